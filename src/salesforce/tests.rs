use super::*;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn offer_mapping() -> ObjectMapping {
    ObjectMapping {
        channel: "offers".into(),
        event: "new_offer".into(),
        text_field: "Offer_Number__c".into(),
        description_field: Some("Offer_Description__c".into()),
    }
}

#[test]
fn the_single_offer_fixture_parses() {
    let message = parse_outbound(&fixture("outbound-message-offer.xml")).unwrap();
    assert_eq!(message.organization_id, "00D5g000004SxYzEAK");
    assert_eq!(message.action_id, "04k5g000000CaFeAAK");
    assert_eq!(message.notifications.len(), 1);
    let offer = &message.notifications[0];
    assert_eq!(offer.id, "04l5g00000QkT1aAAF");
    assert_eq!(offer.object, "Offer__c");
    assert_eq!(
        offer.field("Offer_Description__c"),
        Some("20% off Widget Pro & free delivery")
    );
    let data: Value = serde_json::from_str(&event_data(offer, &offer_mapping(), true)).unwrap();
    assert_eq!(data["id"], "a0B5g00000Kx7QzEAJ");
    assert_eq!(data["text"], "OFF-000123");
    assert_eq!(data["description"], "20% off Widget Pro & free delivery");
    assert_eq!(data["fields"]["Status__c"], "Active");
}

#[test]
fn the_two_notification_fixture_keeps_partial_records() {
    let message = parse_outbound(&fixture("outbound-message-two-notifications.xml")).unwrap();
    let ids: Vec<_> = message
        .notifications
        .iter()
        .map(|n| n.id.as_str())
        .collect();
    assert_eq!(ids, ["04l5g00000QkT1bAAF", "04l5g00000QkT1cAAF"]);
    assert_eq!(
        message.notifications[0].field("Offer_Description__c"),
        Some("Café crème – 2€ off")
    );
    let partial: Value = serde_json::from_str(&event_data(
        &message.notifications[1],
        &offer_mapping(),
        true,
    ))
    .unwrap();
    assert_eq!(partial["text"], "OFF-000125");
    assert!(partial.get("description").is_none());
}

#[test]
fn text_falls_back_to_name_then_id() {
    let notification = Notification {
        id: "n1".into(),
        object: "Offer__c".into(),
        fields: vec![
            ("Id".into(), Some("a0B".into())),
            ("Name".into(), Some("N-1".into())),
        ],
    };
    let data: Value =
        serde_json::from_str(&event_data(&notification, &offer_mapping(), false)).unwrap();
    assert_eq!(data["text"], "N-1");
    assert!(data.get("fields").is_none());
    let bare = Notification {
        id: "n2".into(),
        object: "Offer__c".into(),
        fields: vec![("Id".into(), None)],
    };
    let data: Value = serde_json::from_str(&event_data(&bare, &offer_mapping(), false)).unwrap();
    assert_eq!(data["text"], "n2");
}

#[test]
fn nil_fields_are_none() {
    let xml = fixture("outbound-message-offer.xml").replace(
        "<sf:Status__c>Active</sf:Status__c>",
        "<sf:Status__c xsi:nil=\"true\"/>",
    );
    let message = parse_outbound(&xml).unwrap();
    assert_eq!(message.notifications[0].field("Status__c"), None);
}

#[test]
fn bad_bodies_are_refused() {
    let cases = [
        ("", "malformed"),
        ("<not-closed>", "malformed"),
        ("<a/>", "not an Outbound"),
        (
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body/></soapenv:Envelope>",
            "not an Outbound",
        ),
        (
            &fixture("outbound-message-offer.xml")
                .replace("<OrganizationId>00D5g000004SxYzEAK</OrganizationId>", ""),
            "OrganizationId",
        ),
        (
            &fixture("outbound-message-offer.xml").replace(" xsi:type=\"sf:Offer__c\"", ""),
            "sObject type",
        ),
        (
            &fixture("outbound-message-offer.xml").replace("<Id>04l5g00000QkT1aAAF</Id>", ""),
            "no Id",
        ),
    ];
    for (xml, expected) in cases {
        let error = parse_outbound(xml).unwrap_err().to_string();
        assert!(error.contains(expected), "{expected}: {error}");
    }
    // Entity expansion bombs are refused by the parser rather than expanded.
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY b \"bbbbbbbbbb\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\"><!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\"><!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">]><a>&g;&g;&g;&g;&g;&g;&g;&g;</a>";
    assert!(parse_outbound(bomb).is_err());
}

#[test]
fn organization_ids_compare_on_their_15_character_form() {
    assert!(same_organization("00D5g000004SxYzEAK", "00D5g000004SxYz"));
    assert!(same_organization("00D5g000004SxYz", "00D5g000004SxYzEAK"));
    assert!(!same_organization(
        "00D5g000004SxYZEAK",
        "00D5g000004SxYzEAK"
    ));
    assert!(!same_organization("short", "short"));
}

#[test]
fn ack_and_faults_are_well_formed() {
    assert_eq!(ack(), fixture("outbound-message-ack.xml"));
    let body = fault(FaultCode::Client, "bad <token> & more");
    let document = roxmltree::Document::parse(&body).unwrap();
    let faultstring = document
        .descendants()
        .find(|n| n.has_tag_name("faultstring"))
        .unwrap();
    assert_eq!(faultstring.text(), Some("bad <token> & more"));
    assert!(body.contains("<faultcode>soapenv:Client</faultcode>"));
}
