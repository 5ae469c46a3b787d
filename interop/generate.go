package interop

// The API-parity tests are generated from kcp-go's export data (see apigen).
//go:generate go run ./apigen -modfile go57.mod -out api_v576_test.go
//go:generate go run ./apigen -modfile go.mod -out api_v5672_test.go
