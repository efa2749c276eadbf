module github.com/splitstream/splitstream

go 1.26.0

require (
	github.com/gen2brain/webp v0.5.5
	github.com/klauspost/compress v1.20.4
	github.com/yalue/onnxruntime_go v1.27.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/ebitengine/purego v0.8.3 // indirect
	github.com/tetratelabs/wazero v1.9.0 // indirect
)
