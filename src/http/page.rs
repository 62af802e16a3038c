//! Optional static files (off by default), e.g. the live offers page, with its connection settings
//! served as `{mount}/herald-config.js` from the configuration instead of edited into the page.

use actix_web::{HttpResponse, web};

use crate::config::{PageClient, StaticConfig};

/// Serves `settings.dir` under `settings.mount`, with `herald-config.js` generated from `settings.client`.
pub fn configure(settings: &StaticConfig) -> impl FnOnce(&mut web::ServiceConfig) + use<> {
    let script = page_script(&settings.client);
    let mount = settings.mount.clone();
    let dir = settings.dir.clone();
    move |config: &mut web::ServiceConfig| {
        config
            .route(
                &format!("{mount}/herald-config.js"),
                web::get().to(move || {
                    let script = script.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("application/javascript; charset=utf-8")
                            .insert_header(("Cache-Control", "no-store"))
                            .body(script)
                    }
                }),
            )
            .service(
                // Without the slash, the page's relative URLs would resolve outside the mount.
                actix_files::Files::new(&mount, dir)
                    .index_file("index.html")
                    .redirect_to_slash_directory(),
            );
    }
}

fn page_script(client: &PageClient) -> String {
    let settings =
        serde_json::to_string(client).expect("page settings are plain strings and numbers");
    format!("window.HERALD_CONFIG = {settings};\n")
}
