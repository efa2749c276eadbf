//go:build !amd64 || noasm

package native

var (
	square   = squareGo
	gdnDiv   = gdnDivGo
	gdnMul   = gdnMulGo
	gather2  = gather2Go
	biasRows = biasRowsGo
	lerp     = lerpGo
)
