package interop

import (
	"crypto/pbkdf2"
	"crypto/sha1"
)

// KcptunSalt is the PBKDF2 salt kcptun uses to stretch its pre-shared key.
const KcptunSalt = "kcp-go"

// KcptunMTU is the MTU kcptun configures on its sessions by default.
const KcptunMTU = 1350

// KcptunPass derives kcptun's 32-byte pass from a passphrase: PBKDF2 with
// HMAC-SHA1, salt KcptunSalt, 4096 rounds. Each cipher then takes the prefix
// kcptun gives it (see Cipher.Key).
func KcptunPass(passphrase string) []byte {
	key, err := pbkdf2.Key(sha1.New, passphrase, []byte(KcptunSalt), 4096, 32)
	if err != nil {
		// Only reachable in FIPS-only mode, where SHA-1 PBKDF2 is refused;
		// kcptun cannot run there either.
		panic("interop: pbkdf2: " + err.Error())
	}
	return key
}

// Preset is one of kcptun's named SetNoDelay settings.
type Preset struct {
	Name                          string
	NoDelay, Interval, Resend, NC int
}

// KcptunPresets lists kcptun's modes in its own order: normal, fast, fast2,
// fast3 (the arguments of SetNoDelay).
var KcptunPresets = []Preset{
	{"normal", 0, 40, 2, 1},
	{"fast", 0, 30, 2, 1},
	{"fast2", 1, 20, 2, 1},
	{"fast3", 1, 10, 2, 1},
}
