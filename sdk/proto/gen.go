// Package proto holds the generated gRPC code of ebb.proto. The generators
// are pinned as tools in go.mod, so regenerating is `go generate ./sdk/proto`
// with Debian's protobuf-compiler (protoc) on the PATH.
package proto

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative ebb.proto"
