// Package auth decides who is calling: it verifies the bearer credential on
// every RPC, unary and streaming alike, and puts the resulting [Principal]
// into the handler's context.
//
// # Credentials
//
// Every credential arrives as `Authorization: Bearer <credential>`. The
// verifier tells the kinds apart by their shape, never by trying one after
// the other (so a failure always names the right cause):
//
//   - A service key starts with [ServiceKeyPrefix] ("hds_") followed by at
//     least 32 characters of the URL-safe base64 alphabet. Service keys are
//     static secrets from configuration ([Config.ServiceKeys], service name →
//     key). The presented key is hashed and the hash compared, in constant
//     time, with the hash of every configured key, so neither the position of
//     the first differing byte nor the number of configured keys leaks through
//     timing. [NewServiceKey] makes a fresh one. A service principal has
//     Service set and UserID equal to the service name; it has no household,
//     no rooms and no expiry. Only service principals may Publish
//     ([RequireService]); only people may Subscribe ([RequireUser]). Per-caller
//     state and logs keep the two kinds apart ([Principal.Key],
//     [Principal.LogAttrs]): a service named like a user shares nothing with
//     that user.
//   - Anything else must be a compact JWS: a Clerk session token. It is
//     verified with clerk-sdk-go v2's jwt.Verify, always with a key the
//     verifier already holds (the SDK is never left to fetch keys per call):
//     either the PEM public key from CLERK_JWT_KEY ([Config.JWTKeyPEM],
//     networkless; it wins when both are set), or Clerk's JWKS fetched with
//     CLERK_SECRET_KEY ([Config.SecretKey]) through the SDK's jwks client,
//     cached by kid and refetched on an unknown kid at most once per
//     [Config.JWKSRefetchInterval].
//
// Clerk machine (M2M) tokens are not accepted yet: static service keys cover
// the one service-to-service call we have (Publish), and M2M verification is
// a network round trip to Clerk per uncached token. Adding them means a third
// shape ("mt_…") verified with the SDK's m2m_token client.
//
// # Checks beyond the SDK's
//
// jwt.Verify checks the signature, exp/nbf/iat (with [Config.Leeway]) and
// the algorithm. On top of that a session token must carry exp (the SDK
// accepts a token without one) and sid, its sub must be a Clerk user id
// ("user_…"), its v2 session status (sts) must not be "pending", its issuer
// must be Clerk's (or [Config.Issuer]), and when [Config.AuthorizedParties]
// is non-empty its azp must be in that list (a token without azp is then
// rejected). The household is the token's active organization (v1 org_id or
// v2 o.id), else [Config.DefaultHousehold], else the call is denied.
//
// # Dev mode
//
// [LoadOrCreateDevKey] keeps an RSA key in the data directory and
// [DevKey.Mint] signs Clerk-shaped session tokens with it (issuer
// [DevIssuer]). A verifier built with [Config.Dev] accepts them through the
// same jwt.Verify path, allows readable user ids such as "alice" and honours
// the extra-rooms claim that the benchmark API uses. A verifier without
// Config.Dev rejects every token with the dev issuer, even one whose
// signature checks out because someone configured the dev public key as
// CLERK_JWT_KEY. [DevKey.ServiceKey] derives a stable dev service key,
// accepted as service "dev" by a dev verifier.
//
// # Errors
//
// Failures wrap one of the Err… sentinels in an [*Error]; [Code] maps them
// to Connect codes (Unauthenticated for bad credentials, Unavailable when
// the key set cannot be fetched, PermissionDenied for authenticated callers
// that are not allowed) and [Reason] to short stable labels for metrics.
// Messages never contain the credential.
//
// # Concurrency
//
// A [Verifier] and a [DevKey] are safe for concurrent use once built; their
// configuration must not be changed afterwards. Concurrent verifications that
// miss the key cache share one JWKS request. [Config.OnFailure] is called
// from the goroutines of concurrent requests.
package auth
