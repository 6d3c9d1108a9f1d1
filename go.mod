module github.com/relaymail/relay

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/emersion/go-smtp v0.25.1
	github.com/xdg-go/scram v1.1.2
	golang.org/x/sys v0.49.0
)

require (
	github.com/emersion/go-msgauth v0.7.0
	github.com/fsnotify/fsnotify v1.10.1
	golang.org/x/crypto v0.58.0
	golang.org/x/net v0.62.0
	golang.org/x/oauth2 v0.38.0
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/xdg-go/pbkdf2 v1.0.0 // indirect
	github.com/xdg-go/stringprep v1.0.4 // indirect
	golang.org/x/text v0.43.0 // indirect
)

tool github.com/cpuguy83/go-md2man/v2
