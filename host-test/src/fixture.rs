//! The test world: a mock Mangopay with one account, a virtual clock, and a fresh component
//! instance sharing that clock.

use crate::clock::VirtualClock;
use crate::host::{Config, Error, Host, HttpRequest, Instance, InstanceOptions, config};
use crate::inject::Injector;
use crate::mock::MockMangopay;
use base64::Engine as _;
use wasmtime::component::ResourceAny;

pub const CLIENT_ID: &str = "acme-payments";
pub const API_KEY: &str = "sk-test-5b2c9f0e8d7a6b5c4d3e2f1a0b9c8d7e";

/// `Basic base64(client_id:api_key)`
pub fn basic(client_id: &str, api_key: &str) -> String {
    let pair = format!("{client_id}:{api_key}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

pub struct World {
    pub clock: VirtualClock,
    pub mock: MockMangopay,
    pub instance: Instance,
}

impl World {
    pub fn new() -> World {
        World::build(|_| InstanceOptions::default())
    }

    /// An instance that sees these environment variables.
    pub fn with_env(env: impl FnOnce(&MockMangopay) -> Vec<(String, String)>) -> World {
        World::build(|mock| InstanceOptions {
            env: env(mock),
            ..InstanceOptions::default()
        })
    }

    /// An instance whose outgoing requests `injector` answers instead of the network.
    pub fn with_injector(injector: &Injector) -> World {
        World::build(|_| InstanceOptions {
            hooks: Some(injector.hooks()),
            ..InstanceOptions::default()
        })
    }

    fn build(options: impl FnOnce(&MockMangopay) -> InstanceOptions) -> World {
        let clock = VirtualClock::new();
        let mock = MockMangopay::start(clock.clone());
        mock.add_account(CLIENT_ID, API_KEY);
        let options = InstanceOptions {
            clock: Some(clock.clone()),
            ..options(&mock)
        };
        let instance = Host::shared().instantiate(options).expect("instantiates");
        World {
            clock,
            mock,
            instance,
        }
    }

    /// The default account's config against the mock.
    pub fn config(&self) -> Config {
        config(CLIENT_ID, API_KEY, &self.mock.base_url())
    }

    pub fn client(&mut self) -> ResourceAny {
        let config = self.config();
        self.client_with(&config)
    }

    pub fn client_for(&mut self, client_id: &str, api_key: &str) -> ResourceAny {
        let config = config(client_id, api_key, &self.mock.base_url());
        self.client_with(&config)
    }

    pub fn client_with(&mut self, config: &Config) -> ResourceAny {
        self.instance
            .create_client(config)
            .expect("no trap")
            .expect("valid config")
    }

    /// `GET {mock}/v2.01/{client_id}/users?per_page=10` with an Accept header.
    pub fn users(&self, client_id: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            url: format!(
                "{}/v2.01/{client_id}/users?per_page=10",
                self.mock.base_url()
            ),
            headers: vec![("Accept".into(), "application/json".into())],
        }
    }

    pub fn token(&mut self, client: ResourceAny) -> String {
        self.instance
            .get_token(client)
            .expect("no trap")
            .expect("a token")
            .access_token
    }

    pub fn token_error(&mut self, client: ResourceAny) -> Error {
        self.instance
            .get_token(client)
            .expect("no trap")
            .expect_err("an error")
    }

    pub fn authorize(
        &mut self,
        client: ResourceAny,
        request: &HttpRequest,
    ) -> Result<HttpRequest, Error> {
        self.instance
            .authorize_request(client, request)
            .expect("no trap")
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

/// The values of a request's Authorization headers.
pub fn authorization_headers(request: &HttpRequest) -> Vec<&str> {
    request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str())
        .collect()
}
