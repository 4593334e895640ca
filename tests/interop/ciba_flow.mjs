// Drives one CIBA poll-mode flow against the provider with openid-client v6 (an independent,
// certified client library) and prints one JSON line describing what happened.
//
// Environment: ISSUER, CLIENT_ID, AUTH_METHOD (client_secret_basic | client_secret_post |
// client_secret_jwt | private_key_jwt | tls_client_auth), CLIENT_SECRET or CLIENT_PRIVATE_JWK
// (JSON), LOGIN_HINT, SCENARIO (approve | deny | slow_down), APPROVAL_TOKEN (the provider's
// CIBA_AUTOMATED_APPROVAL_TOKEN; the testing hook stands in for the person).
// SIGNED_REQUEST=1: the authentication request is a request object signed with the private
// key (CIBA §7.1.1, built by oauth4webapi's issueRequestObject).
// CA_CERT, CLIENT_CERT, CLIENT_KEY (PEM files): every call goes over mutual TLS through an
// undici Agent (RFC 8705); the bound access token is then also tried without the certificate.
import { readFileSync } from 'node:fs'
import * as oauth from 'oauth4webapi'
import * as client from 'openid-client'
import { Agent, fetch as undiciFetch } from 'undici'

const env = process.env
const started = Date.now()
const tokenRequests = [] // {at, status, error} for every token endpoint call
const out = { scenario: env.SCENARIO, auth_method: env.AUTH_METHOD, token_requests: tokenRequests }

const read = (path) => path ? readFileSync(path) : undefined
const tlsAgent = env.CA_CERT ? new Agent({ connect: { ca: read(env.CA_CERT), cert: read(env.CLIENT_CERT), key: read(env.CLIENT_KEY) } }) : undefined
const anonymousAgent = env.CA_CERT ? new Agent({ connect: { ca: read(env.CA_CERT) } }) : undefined
// With a certificate: undici's fetch with the Agent (openid-client's documented mTLS recipe).
const baseFetch = tlsAgent ? (url, options) => undiciFetch(url, { ...options, dispatcher: tlsAgent }) : fetch

async function privateKey () {
  const jwk = JSON.parse(env.CLIENT_PRIVATE_JWK)
  return crypto.subtle.importKey(
    'jwk', { kty: jwk.kty, n: jwk.n, e: jwk.e, d: jwk.d, p: jwk.p, q: jwk.q, dp: jwk.dp, dq: jwk.dq, qi: jwk.qi },
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign'])
}

async function clientAuthentication () {
  switch (env.AUTH_METHOD) {
    case 'tls_client_auth': return client.TlsClientAuth()
    case 'client_secret_basic': return client.ClientSecretBasic(env.CLIENT_SECRET)
    case 'client_secret_post': return client.ClientSecretPost(env.CLIENT_SECRET)
    case 'client_secret_jwt': return client.ClientSecretJwt(env.CLIENT_SECRET)
    case 'private_key_jwt':
      return client.PrivateKeyJwt({ key: await privateKey(), kid: JSON.parse(env.CLIENT_PRIVATE_JWK).kid })
    default: throw new Error(`unknown AUTH_METHOD ${env.AUTH_METHOD}`)
  }
}

async function decide (authReqId, action) {
  const response = await baseFetch(new URL('/testing/ciba-approval', env.ISSUER).href, {
    method: 'POST',
    headers: { authorization: `Bearer ${env.APPROVAL_TOKEN}` },
    body: new URLSearchParams({ auth_req_id: authReqId, action })
  })
  if (!response.ok) throw new Error(`testing hook answered ${response.status}`)
}

async function main () {
  const config = await client.discovery(
    new URL(env.ISSUER), env.CLIENT_ID, undefined, await clientAuthentication(),
    { execute: env.CA_CERT ? [] : [client.allowInsecureRequests], // http:// only on 127.0.0.1
      [client.customFetch]: baseFetch })
  client.enableNonRepudiationChecks(config) // verify ID token signatures against jwks_uri

  const tokenEndpoint = config.serverMetadata().token_endpoint
  let authReqId
  let rushed = false
  config[client.customFetch] = async (url, options) => {
    const isPoll = url === tokenEndpoint && String(options.body).includes('auth_req_id')
    if (isPoll && env.SCENARIO === 'slow_down' && !rushed) {
      // A second poller on the same auth_req_id polls just before the library does, so the
      // library's own poll comes too fast and gets slow_down.
      rushed = true
      const early = await baseFetch(url, options)
      tokenRequests.push({ at: Date.now() - started, status: early.status, error: (await early.json()).error, by: 'rogue' })
    }
    const response = await baseFetch(url, options)
    if (isPoll) {
      const body = await response.clone().json()
      tokenRequests.push({ at: Date.now() - started, status: response.status, error: body.error, by: 'library' })
      if (body.error === 'slow_down') await decide(authReqId, 'allow')
    }
    return response
  }

  let parameters = { scope: 'openid profile email', login_hint: env.LOGIN_HINT, binding_message: 'W4SCT' }
  if (env.SIGNED_REQUEST) {
    const jwk = JSON.parse(env.CLIENT_PRIVATE_JWK)
    const request = await oauth.issueRequestObject(
      config.serverMetadata(), { client_id: env.CLIENT_ID }, parameters, { key: await privateKey(), kid: jwk.kid })
    out.request_object = request
    parameters = { request }
  }
  const bc = await client.initiateBackchannelAuthentication(config, parameters)
  authReqId = bc.auth_req_id
  out.interval = bc.interval
  out.expires_in = bc.expires_in
  if (env.SCENARIO === 'approve') await decide(authReqId, 'allow')
  if (env.SCENARIO === 'deny') await decide(authReqId, 'deny')

  try {
    const tokens = await client.pollBackchannelAuthenticationGrant(config, bc)
    const claims = tokens.claims()
    out.result = 'tokens'
    out.token_type = tokens.token_type
    out.id_token_claims = claims
    out.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    out.access_token = tokens.access_token
    if (anonymousAgent) {
      // The same bound token over TLS without the client certificate (RFC 8705 §3).
      const bare = await undiciFetch(config.serverMetadata().userinfo_endpoint, {
        headers: { authorization: `Bearer ${tokens.access_token}` }, dispatcher: anonymousAgent })
      out.userinfo_without_certificate = { status: bare.status, body: await bare.json() }
    }
  } catch (error) {
    out.result = 'error'
    out.error = error.error ?? error.code ?? String(error)
    out.error_name = error.name
  }
}

main()
  .catch((error) => { out.result = 'crash'; out.error = String(error?.stack ?? error) })
  .finally(() => { out.elapsed_ms = Date.now() - started; console.log(JSON.stringify(out)) })
