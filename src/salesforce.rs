//! Salesforce Outbound Messaging: the SOAP `notifications` message, its mapping to Pusher events,
//! and the `Ack` and fault bodies Salesforce reads back. Pure: no IO.

use serde_json::{Map, Value, json};

const SOAP_ENVELOPE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const OUTBOUND: &str = "http://soap.sforce.com/2005/09/outbound";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// One Outbound Messaging request: up to 100 notifications from one org.
#[derive(Debug, PartialEq, Eq)]
pub struct OutboundMessage {
    pub organization_id: String,
    pub action_id: String,
    pub notifications: Vec<Notification>,
}

/// One notification: a record snapshot. Salesforce retries with the same `id` until it gets an `Ack`.
#[derive(Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: String,
    /// The sObject's API name, e.g. `Offer__c`.
    pub object: String,
    /// Field name and value in document order; `None` for `xsi:nil` fields.
    pub fields: Vec<(String, Option<String>)>,
}

impl Notification {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .and_then(|(_, value)| value.as_deref())
    }
}

/// Why a body is not an Outbound Messaging request.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("not an Outbound Messaging request: {0}")]
    NotOutbound(String),
}

fn child<'a, 'input>(
    node: roxmltree::Node<'a, 'input>,
    namespace: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|child| {
        child.is_element()
            && child.tag_name().name() == name
            && child.tag_name().namespace() == Some(namespace)
    })
}

fn text_of(node: roxmltree::Node<'_, '_>) -> String {
    node.text().unwrap_or_default().trim().to_owned()
}

/// Parses a SOAP envelope carrying `notifications` (the shape of `outbound-message-*.xml`).
pub fn parse_outbound(body: &str) -> Result<OutboundMessage, SoapError> {
    let document =
        roxmltree::Document::parse(body).map_err(|e| SoapError::Malformed(e.to_string()))?;
    let envelope = document.root_element();
    if envelope.tag_name().name() != "Envelope"
        || envelope.tag_name().namespace() != Some(SOAP_ENVELOPE)
    {
        return Err(SoapError::NotOutbound(
            "the root element is not a SOAP Envelope".into(),
        ));
    }
    let notifications = child(envelope, SOAP_ENVELOPE, "Body")
        .and_then(|body| child(body, OUTBOUND, "notifications"))
        .ok_or_else(|| SoapError::NotOutbound("the Body has no notifications element".into()))?;
    let required = |name: &str| {
        child(notifications, OUTBOUND, name)
            .map(text_of)
            .filter(|text| !text.is_empty())
            .ok_or_else(|| SoapError::NotOutbound(format!("missing {name}")))
    };
    let organization_id = required("OrganizationId")?;
    let action_id = required("ActionId")?;
    let mut parsed = Vec::new();
    for notification in notifications
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "Notification")
    {
        let id = child(notification, OUTBOUND, "Id")
            .map(text_of)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| SoapError::NotOutbound("a Notification has no Id".into()))?;
        let record = child(notification, OUTBOUND, "sObject")
            .ok_or_else(|| SoapError::NotOutbound(format!("notification {id} has no sObject")))?;
        let object = record
            .attribute((XSI, "type"))
            .map(|kind| kind.rsplit(':').next().unwrap_or(kind).to_owned())
            .filter(|kind| !kind.is_empty())
            .ok_or_else(|| {
                SoapError::NotOutbound(format!("notification {id} has no sObject type"))
            })?;
        let fields = record
            .children()
            .filter(|field| field.is_element())
            .map(|field| {
                let nil = field.attribute((XSI, "nil")) == Some("true");
                let value = (!nil).then(|| field.text().unwrap_or_default().to_owned());
                (field.tag_name().name().to_owned(), value)
            })
            .collect();
        parsed.push(Notification { id, object, fields });
    }
    if parsed.is_empty() {
        return Err(SoapError::NotOutbound("no Notification elements".into()));
    }
    Ok(OutboundMessage {
        organization_id,
        action_id,
        notifications: parsed,
    })
}

/// Organization ids are 15 characters, case-sensitive, or 18 with a checksum suffix: compare the first 15.
pub fn same_organization(a: &str, b: &str) -> bool {
    let short = |id: &str| id.get(..15).unwrap_or(id).to_owned();
    a.len() >= 15 && b.len() >= 15 && short(a) == short(b)
}

/// How one object type becomes an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMapping {
    pub channel: String,
    pub event: String,
    /// Field shown as the offer's text and encoded in its QR code.
    pub text_field: String,
    pub description_field: Option<String>,
}

/// The event data for one notification, in the offers page's single-offer shape
/// `{"id","text","description"}` plus the object name and every field. `with_fields` false leaves the
/// field map out, for records too large for one event.
pub fn event_data(
    notification: &Notification,
    mapping: &ObjectMapping,
    with_fields: bool,
) -> String {
    let record_id = notification.field("Id").unwrap_or(&notification.id);
    let text = notification
        .field(&mapping.text_field)
        .or_else(|| notification.field("Name"))
        .unwrap_or(record_id);
    let mut data = json!({
        "id": record_id,
        "text": text,
        "object": notification.object,
        "notification_id": notification.id,
    });
    if let Some(description) = mapping
        .description_field
        .as_deref()
        .and_then(|field| notification.field(field))
    {
        data["description"] = json!(description);
    }
    if with_fields {
        let fields: Map<String, Value> = notification
            .fields
            .iter()
            .map(|(name, value)| {
                (
                    name.clone(),
                    value.as_deref().map_or(Value::Null, |v| json!(v)),
                )
            })
            .collect();
        data["fields"] = Value::Object(fields);
    }
    data.to_string()
}

/// The `Ack` Salesforce needs before it stops retrying a message.
pub fn ack() -> &'static str {
    concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\n",
        " <soapenv:Body>\n",
        "  <notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n",
        "   <Ack>true</Ack>\n",
        "  </notificationsResponse>\n",
        " </soapenv:Body>\n",
        "</soapenv:Envelope>\n",
    )
}

/// Whose fault a failure is, in SOAP terms: the sender's (`Client`) or ours (`Server`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultCode {
    Client,
    Server,
}

/// A SOAP 1.1 fault body; `message` is escaped.
pub fn fault(code: FaultCode, message: &str) -> String {
    let code = match code {
        FaultCode::Client => "soapenv:Client",
        FaultCode::Server => "soapenv:Server",
    };
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\n \
         <soapenv:Body>\n  <soapenv:Fault>\n   <faultcode>{code}</faultcode>\n   \
         <faultstring>{escaped}</faultstring>\n  </soapenv:Fault>\n </soapenv:Body>\n</soapenv:Envelope>\n"
    )
}

#[cfg(test)]
mod tests;
