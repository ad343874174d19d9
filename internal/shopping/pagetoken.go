package shopping

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// pageTokenCodec seals list positions into page tokens and opens them.
//
// A position is an item's seq, which counts the items of every household;
// shown as is it would tell a member how busy the other households are, and
// a caller could craft one. So a token is the position encrypted and
// authenticated with AES-256-GCM under the store's key, with the household
// as additional data: it opens only for the household it was issued to,
// and any change to it is detected. The seal is about privacy and clear
// errors, not access: even a forged token could only name another position
// in the caller's own list, since the query is scoped by household.
//
// Layout, then unpadded URL-safe base64: version (1 byte) | nonce (12) |
// sealed seq (8 + 16-byte tag) — 50 characters.
type pageTokenCodec struct{ aead cipher.AEAD }

const (
	pageTokenVersion = 1
	// pageTokenContext separates these tokens from anything else the key
	// might ever seal.
	pageTokenContext = "honeydo shopping page token\x00"
)

// pageTokenLen is the encoded length of every token this version issues;
// anything else is refused before decoding.
var pageTokenLen = base64.RawURLEncoding.EncodedLen(1 + 12 + 8 + 16)

func newPageTokenCodec(key []byte) (*pageTokenCodec, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &pageTokenCodec{aead: aead}, nil
}

func (c *pageTokenCodec) seal(householdID string, seq int64) string {
	buf := make([]byte, 1+c.aead.NonceSize(), 1+c.aead.NonceSize()+8+c.aead.Overhead())
	buf[0] = pageTokenVersion
	rand.Read(buf[1:]) // never fails; see crypto/rand.Read
	plain := binary.BigEndian.AppendUint64(nil, uint64(seq))
	buf = c.aead.Seal(buf, buf[1:], plain, []byte(pageTokenContext+householdID))
	return base64.RawURLEncoding.EncodeToString(buf)
}

// open returns the position token marks, or an error saying why it is not
// a token issued for householdID.
func (c *pageTokenCodec) open(householdID, token string) (int64, error) {
	if len(token) != pageTokenLen {
		return 0, errors.New("wrong length")
	}
	buf, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, errors.New("not base64url")
	}
	if buf[0] != pageTokenVersion {
		return 0, errors.New("unknown version")
	}
	nonce, sealed := buf[1:1+c.aead.NonceSize()], buf[1+c.aead.NonceSize():]
	plain, err := c.aead.Open(nil, nonce, sealed, []byte(pageTokenContext+householdID))
	if err != nil || len(plain) != 8 {
		return 0, errors.New("not issued for this list")
	}
	seq := int64(binary.BigEndian.Uint64(plain))
	if seq < 0 {
		return 0, errors.New("bad position")
	}
	return seq, nil
}
