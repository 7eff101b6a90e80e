//! The page, served from the binary: plain HTML, JS and CSS, no build step, no CDN.

pub const INDEX_HTML: &str = include_str!("assets/index.html");
pub const LOGIN_HTML: &str = include_str!("assets/login.html");
pub const OFF_HTML: &str = include_str!("assets/off.html");
pub const CONSOLE_JS: &str = include_str!("assets/console.js");
pub const LOGIN_JS: &str = include_str!("assets/login.js");
pub const CONSOLE_CSS: &str = include_str!("assets/console.css");
