//! What the sections share: the component and its floor loaded in wasmtime, the mock
//! Mangopay, the client's config and the request it authorizes; and calls into instances
//! with their failures as text.

use crate::Options;
use crate::baselines;
use host_test::artifact;
use host_test::clock::VirtualClock;
use host_test::host::{self, Config, Host, HttpRequest, Instance, InstanceOptions};
use host_test::mock::MockMangopay;
use std::fmt::Debug;
use wasmtime::component::ResourceAny;

pub const CLIENT_ID: &str = "bench-client";
pub const API_KEY: &str = "sk-bench-5b2c9f0e8d7a6b5c4d3e2f1a0b9c8d7e";
/// The token of the answers made in-process (hooks, the fake transport): 32 characters, as
/// the mock's.
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";

pub struct Setup {
    pub options: Options,
    /// The component, world `standalone`.
    pub auth_host: Host,
    /// floor-auth: the same exports, answering constants.
    pub floor_host: Host,
    pub mock: MockMangopay,
    pub config: Config,
    /// `GET /users` on the mock, to authorize.
    pub users: HttpRequest,
}

impl Setup {
    pub fn new(options: Options) -> Result<Setup, String> {
        eprintln!("compiling the components in wasmtime...");
        let auth_host = Host::load(artifact::component_wasm())
            .map_err(|e| format!("loading the component: {e}"))?;
        let floor_host = baselines::floor_auth()?;

        let mock = MockMangopay::start(VirtualClock::new());
        mock.add_account(CLIENT_ID, API_KEY);
        let config = host::config(CLIENT_ID, API_KEY, &mock.base_url());
        let users = HttpRequest {
            method: "GET".into(),
            url: format!("{}/v2.01/{CLIENT_ID}/users?per_page=10", mock.base_url()),
            headers: vec![("Accept".into(), "application/json".into())],
        };
        Ok(Setup {
            options,
            auth_host,
            floor_host,
            mock,
            config,
            users,
        })
    }
}

/// The component's answer to a call; a trap, a host failure or the component's error as text.
pub fn answer<T, E: Debug>(call: wasmtime::Result<Result<T, E>>) -> Result<T, String> {
    call.map_err(|e| e.to_string())?
        .map_err(|e| format!("{e:?}"))
}

pub fn instantiate(host: &Host, options: InstanceOptions) -> Result<Instance, String> {
    host.instantiate(options).map_err(|e| e.to_string())
}

/// A fresh instance and a client of `config` in it.
pub fn client(
    host: &Host,
    options: InstanceOptions,
    config: &Config,
) -> Result<(Instance, ResourceAny), String> {
    let mut instance = instantiate(host, options)?;
    let client = answer(instance.create_client(config))?;
    Ok((instance, client))
}
