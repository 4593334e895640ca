// Registers a client with openid-client v6's dynamicClientRegistration (RFC 7591, with the
// provider's initial access token), then runs a poll-mode CIBA flow with it, approved through
// the provider's testing hook, and reads the registration back (RFC 7592). Prints one JSON line.
//
// Environment: ISSUER, INITIAL_ACCESS_TOKEN, APPROVAL_TOKEN, LOGIN_HINT.
import * as client from 'openid-client'

const env = process.env
const out = {}

async function main () {
  const config = await client.dynamicClientRegistration(
    new URL(env.ISSUER),
    {
      client_name: 'openid-client (self-registered)',
      token_endpoint_auth_method: 'client_secret_post',
      grant_types: ['urn:openid:params:grant-type:ciba'],
      backchannel_token_delivery_mode: 'poll',
      scope: 'openid profile'
    },
    undefined, // client_secret_post with the secret the provider returns
    { initialAccessToken: env.INITIAL_ACCESS_TOKEN, execute: [client.allowInsecureRequests] })
  client.enableNonRepudiationChecks(config)
  const registered = config.clientMetadata()
  out.client_id = registered.client_id
  out.registered = {
    delivery_mode: registered.backchannel_token_delivery_mode,
    auth_method: registered.token_endpoint_auth_method,
    has_secret: Boolean(registered.client_secret),
    registration_client_uri: registered.registration_client_uri
  }

  const bc = await client.initiateBackchannelAuthentication(config, {
    scope: 'openid profile', login_hint: env.LOGIN_HINT, binding_message: 'DCR-1'
  })
  const decided = await fetch(new URL('/testing/ciba-approval', env.ISSUER), {
    method: 'POST',
    headers: { authorization: `Bearer ${env.APPROVAL_TOKEN}` },
    body: new URLSearchParams({ auth_req_id: bc.auth_req_id, action: 'allow' })
  })
  if (!decided.ok) throw new Error(`testing hook answered ${decided.status}`)
  const tokens = await client.pollBackchannelAuthenticationGrant(config, bc)
  out.result = 'tokens'
  out.id_token_claims = tokens.claims()

  const read = await fetch(registered.registration_client_uri, {
    headers: { authorization: `Bearer ${registered.registration_access_token}` }
  })
  out.read_status = read.status
  out.read_client_name = (await read.json()).client_name
}

main()
  .catch((error) => { out.result = 'error'; out.error = String(error?.stack ?? error); out.cause = error?.cause })
  .finally(() => console.log(JSON.stringify(out)))
