pub mod fixture;
pub mod smtp_server;
