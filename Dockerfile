# The one image of every prism command (compose.yaml builds it).
# modernc SQLite is pure Go, so the binary is static and runs on distroless.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /prism ./cmd/prism

FROM gcr.io/distroless/static-debian12
COPY --from=build /prism /prism
ENTRYPOINT ["/prism"]
