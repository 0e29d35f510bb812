//! The end-to-end suite against the actix-web demo (`examples/actix.rs`):
//! the same scenarios as `e2e_axum.rs`, over a real socket, with the
//! in-memory store and with Redis.
//!
//! `cargo test --all-features --test e2e_actix`
#![cfg(feature = "actix")]

mod e2e;
mod support;

#[allow(dead_code)] // only `serve` is used; the file's `main` is not
#[path = "../examples/actix.rs"]
mod demo;

use e2e::{BoxFuture, LaunchConfig, Server};

/// Serves the actix demo on 127.0.0.1:0 with two workers.
fn launch_actix(config: LaunchConfig) -> BoxFuture<'static, Server> {
    Box::pin(async move {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let server = demo::serve(
            listener,
            config.keyring.clone(),
            config.store.clone(),
            Some(config.dyn_clock()),
            2,
        )
        .expect("the actix demo");
        let handle = server.handle();
        tokio::spawn(server);
        config.serving(address, move || drop(handle.stop(false)))
    })
}

e2e::suite!("actix", launch_actix);
