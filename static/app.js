// cloakroom SPA: the browser holds only the HttpOnly session cookie; every call carries
// X-CSRF: 1 (which a cross-site page cannot send without a preflight the BFF never allows).
'use strict';

const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = Object.assign({ 'X-CSRF': '1' }, options.headers || {});
  const res = await fetch(path, Object.assign({}, options, { headers, credentials: 'same-origin' }));
  if (res.status === 401) {
    const body = await res.clone().json().catch(() => ({}));
    if (body.error === 'step_up_required' && String(body.login_url).startsWith('/bff/login?')) {
      showStepUp(body.login_url);
      throw new Error('step_up_required');
    }
    showSignedOut();
    throw new Error('unauthenticated');
  }
  return res;
}

// RFC 9470 step-up: the session stays; the user is offered the login the BFF named.
function showStepUp(loginUrl) {
  const link = document.createElement('a');
  link.href = loginUrl;
  link.id = 'step-up';
  link.textContent = 'Confirm it is you';
  $('status').replaceChildren('This needs a stronger sign-in. ', link);
}

function showSignedOut() {
  $('status').textContent = 'You are not signed in.';
  $('signed-in').hidden = true;
  $('signed-out').hidden = false;
}

function renderNotes(notes) {
  const list = $('notes');
  list.replaceChildren();
  for (const note of notes) {
    const li = document.createElement('li');
    li.textContent = note.text + ' ';
    const del = document.createElement('button');
    del.type = 'button';
    del.textContent = 'Delete';
    del.addEventListener('click', () => removeNote(note.id));
    li.appendChild(del);
    list.appendChild(li);
  }
}

async function loadNotes() {
  const res = await api('/api/notes');
  if (!res.ok) {
    $('status').textContent = 'Notes unavailable (' + res.status + ').';
    return;
  }
  renderNotes(await res.json());
  $('status').textContent = '';
}

async function addNote(event) {
  event.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  const res = await api('/api/notes', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text }),
  });
  if (res.ok) {
    $('text').value = '';
    await loadNotes();
  }
}

async function removeNote(id) {
  await api('/api/notes/' + encodeURIComponent(id), { method: 'DELETE' });
  await loadNotes();
}

async function logout() {
  const res = await api('/bff/logout', { method: 'POST' });
  const body = await res.json();
  window.location.assign(body.logout_url || '/');
}

async function start() {
  $('login').addEventListener('click', () => window.location.assign('/bff/login?returnTo=/app/'));
  $('add').addEventListener('submit', (e) => addNote(e).catch(() => {}));
  $('logout').addEventListener('click', () => logout().catch(() => {}));
  try {
    const res = await api('/bff/user');
    if (!res.ok) {
      $('status').textContent = 'Service unavailable (' + res.status + '); try again.';
      return;
    }
    const user = await res.json();
    $('name').textContent = user.claims.name || user.claims.preferred_username || user.sub;
    $('signed-out').hidden = true;
    $('signed-in').hidden = false;
    await loadNotes();
  } catch (_) {
    // 401 already showed the login button.
  }
}

document.addEventListener('DOMContentLoaded', start);
