// A real OpenID Connect provider for the SSO test: npm oidc-provider (OpenID Certified), with
// one static confidential client, test accounts and a claim that carries the Conduit role.
//
//   node oidc.js PORT REDIRECT_URI CLIENT_ID CLIENT_SECRET ACCOUNTS_JSON
//
// ACCOUNTS_JSON: {"login": {"roles": ["group", ...]}, ...}. The provider's development login
// form (features.devInteractions) takes any password for a known login; then a consent form.
'use strict';

const [port, redirectUri, clientId, clientSecret, accountsJson] = process.argv.slice(2);
const accounts = JSON.parse(accountsJson || '{}');

(async () => {
  const { default: Provider } = await import('oidc-provider');
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    pkce: { required: () => true },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      conduit: ['conduit_roles'],
    },
    scopes: ['openid', 'profile', 'conduit'],
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['conduit-test-only-cookie-key'] },
    async findAccount(ctx, id) {
      const account = accounts[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: id, name: id, conduit_roles: account.roles };
        },
      };
    },
  });
  provider.listen(Number(port), '127.0.0.1', () => console.log(`listening ${issuer}`));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
