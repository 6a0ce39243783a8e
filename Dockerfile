# The one image of mss-login: every subcommand (manager, authserver, s3sync, admin, dev) of a
# static binary on distroless/static (CA certificates, /etc/passwd with nonroot, no shell).
#   make docker-build IMG=ghcr.io/mss-login/mss-login:0.1.0
FROM golang:1.26 AS build
WORKDIR /src
# Modules first: they change less often than the code, so this layer stays cached.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X github.com/mss-login/mss-login/internal/version.Version=${VERSION} -X github.com/mss-login/mss-login/internal/version.Commit=${COMMIT}" \
	-o /out/mss-login ./cmd/mss-login

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mss-login /usr/local/bin/mss-login
# 65532 is distroless' nonroot; the chart runs as the same user (runAsNonRoot needs a number).
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mss-login"]
