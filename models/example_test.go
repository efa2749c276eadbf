package models_test

import (
	"context"
	"fmt"
	"log"

	"github.com/splitstream/splitstream/models"
)

// Open a graph with the pure-Go engine and run it on one image.
func Example() {
	e, err := models.OpenFile(models.Native, "testdata/es_encoder_64.onnx", models.Options{Threads: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	fmt.Println("inputs:", e.Inputs())
	img := models.Tensor{Shape: []int{1, 3, 64, 64}, Data: make([]float32, 3*64*64)}
	out, err := e.Run(context.Background(), map[string]models.Tensor{"image": img})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("latent:", out["latent"].Shape)
	// Output:
	// inputs: [{image [-1 3 64 64]}]
	// latent: [1 24 15 15]
}
