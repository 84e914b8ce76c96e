pub mod cut_proxy;
pub mod fixture;
pub mod smtp_server;
