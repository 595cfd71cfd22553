// Package natsoperator makes what a nats-server in operator mode (decentralized JWT authentication) needs, for
// tests of the kits' NATS credentials: an operator, its system account, an account with JetStream, a user of that
// account as a .creds file, and the server configuration that trusts them, as nsc would make them.
package natsoperator

import (
	"fmt"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Setup is one operator's world.
type Setup struct {
	// ServerConfig is the part of a nats-server configuration file that trusts the operator: its JWT, its
	// system account, and a memory resolver preloaded with both accounts' JWTs.
	ServerConfig string
	// Credentials is a .creds file of a user of the JetStream account: the user's JWT and NKey seed.
	Credentials []byte
}

// unlimitedJetStream lets the account create the kits' buckets; an account JWT without JetStream limits has
// JetStream disabled.
var unlimitedJetStream = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit}

// New makes an operator, its system account "SYS", the account "plugin-bridge" with JetStream, and a user of it
// named user. Every key is new, so two setups never trust each other's users.
func New(user string) (Setup, error) {
	operator, operatorKey, err := newKey(nkeys.CreateOperator)
	if err != nil {
		return Setup{}, err
	}
	_, systemKey, err := newKey(nkeys.CreateAccount)
	if err != nil {
		return Setup{}, err
	}
	account, accountKey, err := newKey(nkeys.CreateAccount)
	if err != nil {
		return Setup{}, err
	}
	userPair, userKey, err := newKey(nkeys.CreateUser)
	if err != nil {
		return Setup{}, err
	}

	operatorClaims := jwt.NewOperatorClaims(operatorKey)
	operatorClaims.Name = "plugin-bridge-test"
	operatorClaims.SystemAccount = systemKey
	operatorJWT, err := operatorClaims.Encode(operator)
	if err != nil {
		return Setup{}, fmt.Errorf("operator JWT: %w", err)
	}
	systemClaims := jwt.NewAccountClaims(systemKey)
	systemClaims.Name = "SYS"
	systemJWT, err := systemClaims.Encode(operator)
	if err != nil {
		return Setup{}, fmt.Errorf("system account JWT: %w", err)
	}
	accountClaims := jwt.NewAccountClaims(accountKey)
	accountClaims.Name = "plugin-bridge"
	accountClaims.Limits.JetStreamLimits = unlimitedJetStream
	accountJWT, err := accountClaims.Encode(operator)
	if err != nil {
		return Setup{}, fmt.Errorf("account JWT: %w", err)
	}
	userClaims := jwt.NewUserClaims(userKey)
	userClaims.Name = user
	userJWT, err := userClaims.Encode(account)
	if err != nil {
		return Setup{}, fmt.Errorf("user JWT: %w", err)
	}
	seed, err := userPair.Seed()
	if err != nil {
		return Setup{}, err
	}
	credentials, err := jwt.FormatUserConfig(userJWT, seed)
	if err != nil {
		return Setup{}, fmt.Errorf("user credentials: %w", err)
	}
	config := fmt.Sprintf("operator: %s\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n  %s: %s\n  %s: %s\n}\n",
		operatorJWT, systemKey, systemKey, systemJWT, accountKey, accountJWT)
	return Setup{ServerConfig: config, Credentials: credentials}, nil
}

// newKey makes a key pair with create and returns it with its public key.
func newKey(create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, string, error) {
	pair, err := create()
	if err != nil {
		return nil, "", err
	}
	public, err := pair.PublicKey()
	if err != nil {
		return nil, "", err
	}
	return pair, public, nil
}
