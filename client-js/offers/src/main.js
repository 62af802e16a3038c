// The offers page: subscribes with pusher-js (loaded before this bundle as window.Pusher) and shows
// every offer it receives as a QR code, newest first.
// Record fields only ever reach the page through textContent and attributes, never as markup.

import QRCode from 'qrcode';

import { offersFrom } from './payload.js';
import { readSettings } from './settings.js';
import { STATE_LABELS, pageState } from './status.js';

/** Offers kept on the page; older ones are dropped so a page left open for days stays small. */
const MAX_OFFERS = 50;

/** Pixels per QR module. The CSS scales the canvas, so this only has to be crisp, not exact. */
const QR_SCALE = 8;

const elements = {
  connection: document.getElementById('connection'),
  connectionLabel: document.getElementById('connection-label'),
  connectionDetail: document.getElementById('connection-detail'),
  empty: document.getElementById('empty'),
  offers: document.getElementById('offers'),
  source: document.getElementById('source'),
};

start();

function start() {
  const settings = readSettings(window.HERALD_CONFIG, new URLSearchParams(window.location.search), window.location);
  if (settings.problem) {
    showState('failed', settings.problem);
    return;
  }
  if (typeof window.Pusher !== 'function') {
    showState('failed', 'The Pusher client (pusher.min.js) did not load.');
    return;
  }
  elements.source.textContent = `Showing “${settings.event}” events on channel “${settings.channel}”.`;

  const pusher = new window.Pusher(settings.appKey, settings.pusherOptions);
  let subscribed = false;
  let wasLive = false;
  let detail = '';
  let subscriptionProblem = '';
  const update = () => {
    if (subscriptionProblem) {
      showState('failed', subscriptionProblem);
      return;
    }
    const state = pageState(pusher.connection.state, subscribed, wasLive);
    if (state === 'live') {
      wasLive = true;
      detail = '';
    }
    showState(state, detail);
  };

  pusher.connection.bind('state_change', (change) => {
    if (change.current !== 'connected') {
      // pusher-js subscribes again on every new connection.
      subscribed = false;
    }
    if (change.current === 'unavailable') {
      detail = 'Herald cannot be reached; still trying.';
    } else if (change.current === 'connecting' && change.previous !== 'unavailable') {
      detail = '';
    }
    update();
  });
  pusher.connection.bind('error', (error) => {
    detail = errorMessage(error) || detail;
    update();
  });

  const channel = pusher.subscribe(settings.channel);
  channel.bind('pusher:subscription_succeeded', () => {
    subscribed = true;
    subscriptionProblem = '';
    update();
  });
  channel.bind('pusher:subscription_error', () => {
    // Private and presence channels need an authorization endpoint, which this page has none of.
    subscriptionProblem = `Could not subscribe to channel “${settings.channel}”.`;
    update();
  });
  channel.bind(settings.event, (data) => {
    const offers = offersFrom(data);
    if (offers.length === 0) {
      console.warn('Ignored an event without offers', data);
      return;
    }
    showOffers(offers, new Date());
  });
  update();
}

function showState(state, detail) {
  elements.connection.dataset.state = state;
  elements.connectionLabel.textContent = STATE_LABELS[state];
  elements.connectionDetail.textContent = detail || '';
}

/** The message inside one of pusher-js's error events, which nest it differently by source. */
function errorMessage(error) {
  const data = error?.error?.data ?? error?.data;
  return typeof data?.message === 'string' ? data.message : '';
}

/** Puts `offers` at the top of the list; within one event, later offers count as newer. */
function showOffers(offers, receivedAt) {
  for (const offer of offers) {
    if (offer.id) {
      // A record published again replaces its earlier card rather than appearing twice.
      for (const card of [...elements.offers.children]) {
        if (card.dataset.offerId === offer.id) {
          card.remove();
        }
      }
    }
    elements.offers.prepend(offerCard(offer, receivedAt));
  }
  while (elements.offers.children.length > MAX_OFFERS) {
    elements.offers.lastElementChild.remove();
  }
  elements.empty.hidden = elements.offers.children.length > 0;
}

function offerCard(offer, receivedAt) {
  const card = document.createElement('li');
  card.className = 'offer';
  if (offer.id) {
    card.dataset.offerId = offer.id;
  }

  const code = document.createElement('canvas');
  code.className = 'offer-code';
  code.setAttribute('role', 'img');
  code.setAttribute('aria-label', `QR code for ${offer.text}`);
  // In the card before drawing, so a failure can swap it for a note.
  card.append(code);
  QRCode.toCanvas(
    code,
    offer.text,
    { errorCorrectionLevel: 'M', margin: 4, scale: QR_SCALE, color: { dark: '#000000', light: '#ffffff' } },
    (error) => {
      if (error) {
        // Only text beyond a QR code's capacity (about 2 KB) gets here.
        const note = document.createElement('p');
        note.className = 'offer-code offer-code-missing';
        note.textContent = 'Too long for a QR code';
        code.replaceWith(note);
        return;
      }
      // qrcode fixes the displayed size inline; the stylesheet sizes codes to fit the card instead.
      code.style.removeProperty('width');
      code.style.removeProperty('height');
    },
  );

  const body = document.createElement('div');
  body.className = 'offer-body';
  const title = document.createElement('h2');
  title.className = 'offer-text';
  title.textContent = offer.text;
  body.append(title);
  if (offer.description) {
    const description = document.createElement('p');
    description.className = 'offer-description';
    description.textContent = offer.description;
    body.append(description);
  }
  const time = document.createElement('time');
  time.className = 'offer-time';
  time.dateTime = receivedAt.toISOString();
  time.textContent = `Received ${receivedAt.toLocaleTimeString()}`;
  body.append(time);
  card.append(body);
  return card;
}
