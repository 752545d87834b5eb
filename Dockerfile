# A static teleop on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/teleop ./cmd/teleop

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/teleop /teleop
USER 65532:65532
ENTRYPOINT ["/teleop"]
CMD ["run"]
