package interop

import kcpx "github.com/kcpx/kcp"

func installKCPXNonces() {
	kcpxNonces.use(kcpx.NewEntropy())
	kcpx.SetEntropy(&kcpxNonces)
}

func restoreKCPXNonces() { kcpxNonces.use(kcpx.NewEntropy()) }
