//! Section 4, the token economy: token requests for many authorizations in one instance, for
//! fresh instances with one authorization each, and the same with the shared token store.
//! Each on its own mock, counted there.

use crate::report::Report;
use crate::setup::Setup;
use crate::setup::{API_KEY, CLIENT_ID, answer, client};
use host_test::artifact;
use host_test::clock::VirtualClock;
use host_test::host::{self, Config, Host, HttpRequest, Instance, InstanceOptions};
use host_test::mock::MockMangopay;
use host_test::store::{HostStore, MapStore};
use std::sync::Arc;
use wasmtime::component::ResourceAny;

pub fn section(setup: &Setup, report: &mut Report) -> Result<(), String> {
    let calls = setup.options.scaled(10_000);
    let instances = setup.options.scaled(1_000);
    let store_host = Host::load(artifact::store_component_wasm())
        .map_err(|e| format!("loading the store component: {e}"))?;
    let one_lifetime = one_instance(&setup.auth_host, calls)?;
    let per_instance = fresh_instances(&setup.auth_host, None, instances)?;
    // The store's entries expire on its own clock; the token lives far longer than this loop.
    let store: Arc<dyn HostStore> = Arc::new(MapStore::new(VirtualClock::new()));
    let shared = fresh_instances(&store_host, Some(store), instances)?;

    report.line("## 4. Token economy: token requests the mock counted");
    report.line("");
    report.table(
        &["workload", "token requests", "per unit"],
        &[
            vec![
                format!("{calls} `authorize-request` calls, one instance"),
                one_lifetime.to_string(),
                format!("{:.4} per call", one_lifetime as f64 / calls as f64),
            ],
            vec![
                format!("{instances} fresh instances, one authorize each, no store"),
                per_instance.to_string(),
                format!("{:.2} per instance", per_instance as f64 / instances as f64),
            ],
            vec![
                format!(
                    "{instances} fresh instances of `with-token-store`, one in-process token \
                     store, one authorize each"
                ),
                shared.to_string(),
                format!("{:.4} per instance", shared as f64 / instances as f64),
            ],
        ],
    );
    Ok(())
}

/// A mock of its own on a virtual clock, the config of its account and a request to
/// authorize.
struct World {
    clock: VirtualClock,
    config: Config,
    users: HttpRequest,
    mock: MockMangopay,
}

impl World {
    fn start() -> World {
        let clock = VirtualClock::new();
        let mock = MockMangopay::start(clock.clone());
        mock.add_account(CLIENT_ID, API_KEY);
        let users = HttpRequest {
            method: "GET".into(),
            url: format!("{}/v2.01/{CLIENT_ID}/users", mock.base_url()),
            headers: vec![],
        };
        World {
            config: host::config(CLIENT_ID, API_KEY, &mock.base_url()),
            clock,
            users,
            mock,
        }
    }

    /// A fresh instance on this world's clock, with `store`, and a client in it.
    fn client(
        &self,
        host: &Host,
        store: Option<Arc<dyn HostStore>>,
    ) -> Result<(Instance, ResourceAny), String> {
        let options = InstanceOptions {
            clock: Some(self.clock.clone()),
            store,
            ..InstanceOptions::default()
        };
        client(host, options, &self.config)
    }

    fn authorize(&self, instance: &mut Instance, client: ResourceAny) -> Result<(), String> {
        answer(instance.authorize_request(client, &self.users)).map(drop)
    }
}

/// Token requests for `calls` authorizations in one instance.
fn one_instance(host: &Host, calls: usize) -> Result<usize, String> {
    let world = World::start();
    let (mut instance, client) = world.client(host, None)?;
    for _ in 0..calls {
        world.authorize(&mut instance, client)?;
    }
    Ok(world.mock.token_requests())
}

/// Token requests for `instances` fresh instances with one authorization each.
fn fresh_instances(
    host: &Host,
    store: Option<Arc<dyn HostStore>>,
    instances: usize,
) -> Result<usize, String> {
    let world = World::start();
    for _ in 0..instances {
        let (mut instance, client) = world.client(host, store.clone())?;
        world.authorize(&mut instance, client)?;
    }
    Ok(world.mock.token_requests())
}
