// Reads offers out of an event's data. Pure, and never throws: a malformed payload yields no offers.

/**
 * Returns the offers in `data`, in payload order, as `{ id, text, description }` with strings
 * ('' when absent).
 *
 * Accepted shapes: `{"offers": [{"text": ...}, ...]}` (the Salesforce sample) and a single offer
 * `{"id": ..., "text": ..., "description": ...}` (what Herald's Salesforce bridge publishes).
 * An offer without a non-blank `text` is skipped; the others in the same payload still count.
 */
export function offersFrom(data) {
  if (!isPlainObject(data)) {
    return [];
  }
  let items;
  if ('offers' in data) {
    items = Array.isArray(data.offers) ? data.offers : [];
  } else {
    items = [data];
  }
  const offers = [];
  for (const item of items) {
    const offer = offerFrom(item);
    if (offer) {
      offers.push(offer);
    }
  }
  return offers;
}

function offerFrom(item) {
  if (!isPlainObject(item)) {
    return null;
  }
  const text = fieldText(item.text);
  // The text is kept exactly as sent, since the QR code must encode exactly that.
  if (text.trim() === '') {
    return null;
  }
  return { id: fieldText(item.id), text, description: fieldText(item.description) };
}

/** Strings as they are, finite numbers as digits (an Apex Decimal field), anything else as ''. */
function fieldText(value) {
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number' && Number.isFinite(value)) {
    return String(value);
  }
  return '';
}

function isPlainObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
