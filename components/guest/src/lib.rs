//! What every WASI 0.2 world of mangopay-auth shares: the `mangopay:auth/auth` exports over
//! the core client and the wasi:http transport (the clock and the log are
//! `mangopay-auth-wasi`'s). A world crate says only how its clients share a token (`World`)
//! and exports `Component<ItsWorld>` with `export_auth!`.
//!
//! The WASI calls go through one bindings source, the Bytecode Alliance's `wasip2` crate,
//! whose wit-bindgen runtime is the one these bindings use.
#![cfg(target_arch = "wasm32")]

mod convert;
mod transport;

pub use mangopay_auth::TokenStore;

/// The `mangopay:auth/auth` export, shared by every world crate.
pub mod bindings {
    wit_bindgen::generate!({
        world: "standalone",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_auth",
        default_bindings_module: "mangopay_auth_guest::bindings",
    });
}

use bindings::exports::mangopay::auth::auth::{
    self as wit, ApiRequest, ApiResponse, AuthStatus, Config, Error, Guest, GuestClient,
    HttpRequest, HttpResponse, ResponseVerdict, Token,
};
use mangopay_auth::{Client, ClientConfig};
use mangopay_auth_wasi::{HostClock, logger};
use std::cell::OnceCell;
use std::marker::PhantomData;
use std::rc::Rc;
use transport::WasiHttp;

/// How the clients of one world share their token.
pub trait World: 'static {
    /// The store clients share their token through; `None` keeps it in the instance.
    fn token_store() -> Option<Box<dyn TokenStore>>;
}

type HostClient = Client<WasiHttp, HostClock>;

fn make_client<W: World>(config: ClientConfig) -> Result<HostClient, mangopay_auth::Error> {
    let client = match W::token_store() {
        Some(store) => Client::with_store(config, WasiHttp, HostClock, store),
        None => Client::new(config, WasiHttp, HostClock),
    }?;
    Ok(client.with_logger(logger()))
}

thread_local! {
    // Components are single-threaded; the default client lives as long as the instance.
    static DEFAULT_CLIENT: OnceCell<Rc<HostClient>> = const { OnceCell::new() };
}

/// The client made from `MANGOPAY_*` variables on first use. A failure is not remembered, so
/// the error is reported on every call.
fn default_client<W: World>() -> Result<Rc<HostClient>, Error> {
    DEFAULT_CLIENT.with(|cell| {
        if let Some(client) = cell.get() {
            return Ok(client.clone());
        }
        let config = mangopay_auth::from_env(|name| std::env::var(name).ok())?;
        let client = Rc::new(make_client::<W>(config)?);
        Ok(cell.get_or_init(|| client).clone())
    })
}

/// The `auth` export of world `W`.
pub struct Component<W>(PhantomData<W>);

/// The `client` resource of world `W`.
pub struct AuthClient<W> {
    client: HostClient,
    world: PhantomData<W>,
}

impl<W: World> Guest for Component<W> {
    type Client = AuthClient<W>;

    fn get_token() -> Result<Token, Error> {
        Ok(default_client::<W>()?.get_token()?.into())
    }

    fn authorize_request(request: HttpRequest) -> Result<HttpRequest, Error> {
        Ok(default_client::<W>()?
            .authorize_request(request.into())?
            .into())
    }

    fn check_response(request: HttpRequest, response: HttpResponse) -> ResponseVerdict {
        match default_client::<W>() {
            Ok(client) => check_response(&client, request, response),
            Err(_) => ResponseVerdict::Accepted,
        }
    }

    fn token_status() -> Result<AuthStatus, Error> {
        Ok(default_client::<W>()?.status().into())
    }

    fn send(request: ApiRequest) -> Result<ApiResponse, Error> {
        Ok(default_client::<W>()?.send(request.into())?.into())
    }

    fn base_url() -> Result<String, Error> {
        Ok(default_client::<W>()?.base_url().to_owned())
    }
}

impl<W: World> GuestClient for AuthClient<W> {
    fn create(config: Config) -> Result<wit::Client, Error> {
        let client = make_client::<W>(config.into())?;
        Ok(wit::Client::new(AuthClient {
            client,
            world: PhantomData::<W>,
        }))
    }

    fn get_token(&self) -> Result<Token, Error> {
        Ok(self.client.get_token()?.into())
    }

    fn authorize_request(&self, request: HttpRequest) -> Result<HttpRequest, Error> {
        Ok(self.client.authorize_request(request.into())?.into())
    }

    fn check_response(&self, request: HttpRequest, response: HttpResponse) -> ResponseVerdict {
        check_response(&self.client, request, response)
    }

    fn token_status(&self) -> AuthStatus {
        self.client.status().into()
    }

    fn send(&self, request: ApiRequest) -> Result<ApiResponse, Error> {
        Ok(self.client.send(request.into())?.into())
    }

    fn base_url(&self) -> String {
        self.client.base_url().to_owned()
    }
}

fn check_response(
    client: &HostClient,
    request: HttpRequest,
    response: HttpResponse,
) -> ResponseVerdict {
    client
        .check_response(
            &request.into(),
            response.status,
            &response.headers,
            &response.body,
        )
        .into()
}
