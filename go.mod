module github.com/kcpx/kcp

go 1.24
