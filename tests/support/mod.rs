pub mod certs;
pub mod config;
pub mod cut_proxy;
pub mod daemon;
pub mod defects;
pub mod fixture;
pub mod scripted_smtp;
pub mod smtp_server;
