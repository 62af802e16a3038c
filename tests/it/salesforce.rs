//! Salesforce Outbound Messaging into Pusher events, replayed from the byte-exact fixtures.

use serde_json::Value;

use crate::support::{TestServer, config_with, spawn_server};

const TOKEN: &str = "outbound-token-0123456789";
const ORG: &str = "00D5g000004SxYzEAK";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn bridge_server(extra: &str) -> TestServer {
    spawn_server(config_with(
        "",
        &format!(
            "[apps.1.salesforce]\ntoken = \"{TOKEN}\"\norganization_ids = [\"{ORG}\"]\n{extra}\n\
             [apps.1.salesforce.objects.Offer__c]\nchannel = \"offers\"\nevent = \"new_offer\"\n\
             text_field = \"Offer_Number__c\"\ndescription_field = \"Offer_Description__c\"\n"
        ),
        "",
    ))
}

async fn post(server: &TestServer, path_and_query: &str, body: &str) -> (u16, String) {
    let mut response = awc::Client::new()
        .post(server.http_url(path_and_query))
        .insert_header(("content-type", "text/xml; charset=utf-8"))
        .insert_header(("soapaction", "\"\""))
        .send_body(body.to_owned())
        .await
        .unwrap();
    let body = response.body().await.unwrap();
    (
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn outbound_path() -> String {
    format!("/salesforce/outbound/1?token={TOKEN}")
}

fn data(event: &Value) -> Value {
    serde_json::from_str(event["data"].as_str().unwrap()).unwrap()
}

#[actix_rt::test]
async fn one_notification_becomes_one_offer_event_and_an_ack() {
    let server = bridge_server("");
    let mut page = server.connect().await;
    page.subscribe("offers").await;
    let (status, body) = post(
        &server,
        &outbound_path(),
        &fixture("outbound-message-offer.xml"),
    )
    .await;
    assert_eq!((status, body), (200, fixture("outbound-message-ack.xml")));
    let event = page.expect("new_offer").await;
    assert_eq!(event["channel"], "offers");
    let offer = data(&event);
    assert_eq!(offer["id"], "a0B5g00000Kx7QzEAJ");
    assert_eq!(offer["text"], "OFF-000123");
    assert_eq!(offer["description"], "20% off Widget Pro & free delivery");
    assert_eq!(offer["fields"]["Status__c"], "Active");
}

#[actix_rt::test]
async fn batched_notifications_are_all_published_and_retries_publish_once() {
    let server = bridge_server("");
    let mut page = server.connect().await;
    page.subscribe("offers").await;
    let message = fixture("outbound-message-two-notifications.xml");
    assert_eq!(post(&server, &outbound_path(), &message).await.0, 200);
    let first = data(&page.expect("new_offer").await);
    let second = data(&page.expect("new_offer").await);
    assert_eq!(
        (first["text"].as_str(), second["text"].as_str()),
        (Some("OFF-000124"), Some("OFF-000125"))
    );
    assert_eq!(first["description"], "Café crème – 2€ off");
    // The partial record has no description field at all.
    assert!(second.get("description").is_none());
    // Salesforce retries the same message: acknowledged, nothing published again.
    for _ in 0..2 {
        assert_eq!(post(&server, &outbound_path(), &message).await.0, 200);
    }
    page.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn refused_messages_get_soap_faults_and_publish_nothing() {
    let server = bridge_server("");
    let mut page = server.connect().await;
    page.subscribe("offers").await;
    let offer = fixture("outbound-message-offer.xml");
    let other_org = offer.replace(ORG, "00DXXXXXXXXXXXXEAK");
    let unknown_object = offer.replace("sf:Offer__c", "sf:Invoice__c");
    let cases = [
        (
            "/salesforce/outbound/1?token=wrong-token-wrong".to_owned(),
            offer.clone(),
            401,
            "soapenv:Client",
        ),
        (
            format!("/salesforce/outbound/1?token={TOKEN}"),
            other_org,
            403,
            "soapenv:Client",
        ),
        (
            outbound_path(),
            "<soapenv:Envelope".to_owned(),
            400,
            "soapenv:Client",
        ),
        (
            outbound_path(),
            "{\"not\":\"xml\"}".to_owned(),
            400,
            "soapenv:Client",
        ),
        (outbound_path(), unknown_object, 400, "soapenv:Client"),
        (
            format!("/salesforce/outbound/2?token={TOKEN}"),
            offer.clone(),
            404,
            "soapenv:Client",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, response) = post(&server, &path, &body).await;
        assert_eq!(got, status, "{path}: {response}");
        assert!(
            response.contains(&format!("<faultcode>{code}</faultcode>")),
            "{response}"
        );
        assert!(!response.contains("<Ack>"), "{response}");
    }
    let (status, _) = post(&server, "/salesforce/outbound/1", &offer).await;
    assert_eq!(status, 401);
    page.expect_nothing_pending().await;
    // A message refused before is delivered once it is sent correctly.
    assert_eq!(post(&server, &outbound_path(), &offer).await.0, 200);
    page.expect("new_offer").await;
}

#[actix_rt::test]
async fn oversize_records_drop_their_field_map_or_are_refused() {
    let server = spawn_server(config_with(
        "",
        &format!(
            "[apps.1.limits]\nmax_event_data_bytes = 400\n[apps.1.salesforce]\ntoken = \"{TOKEN}\"\norganization_ids = [\"{ORG}\"]\n\
             [apps.1.salesforce.objects.Offer__c]\nchannel = \"offers\"\nevent = \"new_offer\"\ntext_field = \"Offer_Number__c\"\n\
             description_field = \"Offer_Description__c\"\n"
        ),
        "",
    ));
    let mut page = server.connect().await;
    page.subscribe("offers").await;
    let offer = fixture("outbound-message-offer.xml");
    let long_status = offer.replace(
        "<sf:Status__c>Active</sf:Status__c>",
        &format!("<sf:Status__c>{}</sf:Status__c>", "A".repeat(300)),
    );
    assert_eq!(post(&server, &outbound_path(), &long_status).await.0, 200);
    let published = data(&page.expect("new_offer").await);
    assert_eq!(published["text"], "OFF-000123");
    assert!(published.get("fields").is_none());
    let long_description = offer
        .replace("04l5g00000QkT1aAAF", "04l5g00000QkT1zAAF")
        .replace("20% off Widget Pro &amp; free delivery", &"D".repeat(500));
    let (status, body) = post(&server, &outbound_path(), &long_description).await;
    assert_eq!(status, 413, "{body}");
    page.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn the_ip_allow_list_is_enforced() {
    let server = bridge_server("allowed_ips = [\"10.0.0.0/8\"]");
    let (status, body) = post(
        &server,
        &outbound_path(),
        &fixture("outbound-message-offer.xml"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("127.0.0.1 is not an allowed sender"));
    let server = bridge_server("allowed_ips = [\"127.0.0.1\"]");
    assert_eq!(
        post(
            &server,
            &outbound_path(),
            &fixture("outbound-message-offer.xml")
        )
        .await
        .0,
        200
    );
}

#[actix_rt::test]
async fn bridge_settings_are_validated() {
    let base = "[apps.1]\nkey = \"k\"\nsecret = \"s\"\n[apps.1.salesforce]\n";
    let objects =
        "[apps.1.salesforce.objects.Offer__c]\nchannel = \"offers\"\nevent = \"new_offer\"\n";
    let cases = [
        (
            format!("{base}token = \"short\"\norganization_ids = [\"{ORG}\"]\n{objects}"),
            "apps.1.salesforce.token",
        ),
        (
            format!("{base}token = \"{TOKEN}\"\norganization_ids = []\n{objects}"),
            "apps.1.salesforce.organization_ids",
        ),
        (
            format!("{base}token = \"{TOKEN}\"\norganization_ids = [\"x\"]\n{objects}"),
            "apps.1.salesforce.organization_ids",
        ),
        (
            format!(
                "{base}token = \"{TOKEN}\"\norganization_ids = [\"{ORG}\"]\nallowed_ips = [\"nope\"]\n{objects}"
            ),
            "apps.1.salesforce.allowed_ips",
        ),
        (
            format!("{base}token = \"{TOKEN}\"\norganization_ids = [\"{ORG}\"]\nobjects = {{}}\n"),
            "apps.1.salesforce.objects",
        ),
        (
            format!(
                "{base}token = \"{TOKEN}\"\norganization_ids = [\"{ORG}\"]\n[apps.1.salesforce.objects.Offer__c]\nchannel = \"bad name\"\nevent = \"e\"\n"
            ),
            "apps.1.salesforce.objects.Offer__c.channel",
        ),
    ];
    for (toml, named) in cases {
        let error = herald::config::Config::from_toml(&toml)
            .unwrap_err()
            .to_string();
        assert!(error.contains(named), "{named}: {error}");
    }
}
