pub mod config;
pub mod cut_proxy;
pub mod daemon;
pub mod fixture;
pub mod smtp_server;
