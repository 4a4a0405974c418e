# ebb's image for those who build with Docker: the same layout as
# `go run ./scripts/image` (which CI uses, without a daemon): a static ebb
# (its builtin plugins are subcommands of it), Debian's CA certificates, a
# nonroot user 65532 and the example config.hcl on scratch.
#
#   docker build -t ebb:dev .
#   docker run --rm ebb:dev version
FROM golang:1.26-bookworm AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" -o /out/usr/local/bin/ebb ./cmd/ebb
# The same /etc/passwd and /etc/group as scripts/image writes.
RUN mkdir -p /out/etc/ebb /out/etc/ssl/certs /out/tmp /out/var/lib/ebb /out/home/nonroot \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && cp config.hcl /out/etc/ebb/config.hcl \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group \
 && chmod 1777 /out/tmp && chown 65532:65532 /out/var/lib/ebb /out/home/nonroot

FROM scratch
COPY --from=build /out/ /
USER 65532:65532
WORKDIR /var/lib/ebb
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/ebb"]
CMD ["run", "--config", "/etc/ebb/config.hcl", "--state", "/var/lib/ebb/ebb.db", "--http", ":9464"]
