//! The end-to-end suite against the axum demo (`examples/axum.rs`), over a
//! real socket, with the in-memory store and with Redis.
//!
//! `cargo test --all-features --test e2e_axum`
#![cfg(feature = "axum")]

mod e2e;
mod support;

#[allow(dead_code)] // only `router` is used; the file's `main` is not
#[path = "../examples/axum.rs"]
mod demo;

use e2e::{BoxFuture, LaunchConfig, Server};

/// Serves the axum demo's router on 127.0.0.1:0 in a background task.
fn launch_axum(config: LaunchConfig) -> BoxFuture<'static, Server> {
    Box::pin(async move {
        let app = demo::router(
            config.keyring.clone(),
            config.store.clone(),
            Some(config.dyn_clock()),
        )
        .expect("the demo's router");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        config.serving(address, move || task.abort())
    })
}

e2e::suite!("axum", launch_axum);
