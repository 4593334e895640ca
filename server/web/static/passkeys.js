// Passkeys (WebAuthn): "Add a passkey" on the account page, "Sign in with a passkey" on the
// sign-in and approval pages. The server makes the options and checks the answers; this file
// only carries them between the page, the browser's authenticator and the server.
(function () {
  const b64url = {
    decode (text) {
      const b64 = text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '=')
      return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer
    },
    encode (buffer) {
      let text = ''
      for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte)
      return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
    }
  }

  function creationOptions (json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json)
    return {
      ...json,
      challenge: b64url.decode(json.challenge),
      user: { ...json.user, id: b64url.decode(json.user.id) },
      excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) }))
    }
  }

  function requestOptions (json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json)
    return {
      ...json,
      challenge: b64url.decode(json.challenge),
      allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) }))
    }
  }

  function asJSON (credential) {
    if (credential.toJSON) return credential.toJSON()
    const r = credential.response
    const response = { clientDataJSON: b64url.encode(r.clientDataJSON) }
    if (r.attestationObject) {
      response.attestationObject = b64url.encode(r.attestationObject)
      response.transports = r.getTransports ? r.getTransports() : []
    } else {
      response.authenticatorData = b64url.encode(r.authenticatorData)
      response.signature = b64url.encode(r.signature)
      if (r.userHandle) response.userHandle = b64url.encode(r.userHandle)
    }
    return {
      id: credential.id,
      rawId: b64url.encode(credential.rawId),
      type: credential.type,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment
    }
  }

  async function post (url, csrf, body) {
    const response = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body || {})
    })
    const data = await response.json().catch(() => ({}))
    if (!response.ok) throw new Error(data.error_description || data.error || `The provider answered ${response.status}.`)
    return data
  }

  function explain (error) {
    if (error && error.name === 'NotAllowedError') return 'No passkey was used (cancelled or timed out).'
    if (error && error.name === 'InvalidStateError') return 'This authenticator already holds a passkey for you.'
    return (error && error.message) || 'Something went wrong; try again.'
  }

  function supported (status) {
    if (window.PublicKeyCredential && window.isSecureContext) return true
    status.textContent = 'Passkeys need a browser with WebAuthn on an https page.'
    return false
  }

  // Each button runs one ceremony; its data-status element tells the person how it went.
  function bind (selector, waiting, ceremony) {
    for (const button of document.querySelectorAll(selector)) {
      if (button.dataset.bound) continue
      button.dataset.bound = '1'
      button.addEventListener('click', async () => {
        const status = document.getElementById(button.dataset.status)
        if (!supported(status)) return
        button.disabled = true
        status.textContent = waiting
        try {
          await ceremony(button, status)
        } catch (error) {
          status.textContent = explain(error)
          button.disabled = false
        }
      })
    }
  }

  bind('[data-passkey-signin]', 'Waiting for your passkey…', async (button, status) => {
    const options = await post(button.dataset.optionsUrl, button.dataset.csrf)
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) })
    await post(button.dataset.signinUrl, button.dataset.csrf, { credential: asJSON(credential), page: button.dataset.page })
    status.textContent = 'Signed in.'
    window.location.assign(button.dataset.next || window.location.href)
  })

  bind('[data-passkey-register]', 'Follow your browser to create the passkey…', async (button) => {
    const options = await post(button.dataset.optionsUrl, button.dataset.csrf)
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) })
    const name = document.getElementById(button.dataset.nameInput).value
    await post(button.dataset.registerUrl, button.dataset.csrf, { credential: asJSON(credential), name })
    window.location.reload()
  })
})()
