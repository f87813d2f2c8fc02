module github.com/wsmill/wsmill

go 1.26.0

require (
	github.com/coder/websocket v1.8.14
	github.com/gobwas/ws v1.5.0
	github.com/gorilla/websocket v1.5.3
	github.com/mailru/easygo v0.0.0-20190618140210-3c14a0dc985f
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
