package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchEngineJSON(t *testing.T) {
	var out bytes.Buffer
	args := []string{"--model", "../../models/testdata/es_encoder_64.onnx", "--engines", "native", "--threads", "1", "--runs", "3", "--warmup", "1", "--json"}
	if err := benchEngine(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if len(got) != 1 || !(got["native_ms"] > 0) {
		t.Fatalf("got %v, want only a positive native_ms", got)
	}
}

func TestBenchEngineErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no model", []string{"--engines", "native"}, "usage"},
		{"missing file", []string{"--model", "nope.onnx", "--engines", "native"}, "nope.onnx"},
		{"bad engine", []string{"--model", "../../models/testdata/ops.onnx", "--engines", "gpu"}, `unknown engine "gpu"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := benchEngine(context.Background(), tt.args, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// --zoo runs every graph of the bundles at each thread count.
func TestBenchEngineZoo(t *testing.T) {
	dir := "../../models/zoo/fmnist-es-b1"
	var out bytes.Buffer
	args := []string{"--zoo", "--bundle", dir, "--engines", "native", "--runs", "1", "--warmup", "0", "--pause", "0", "--json"}
	if err := benchEngine(context.Background(), args, &out); err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Bundle, Graph string
		Threads       int
		NativeMS      float64 `json:"native_ms"`
	}
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	graphs := map[string]int{}
	for _, r := range rows {
		if r.Bundle != "fmnist-es-b1" || !(r.NativeMS > 0) || (r.Threads != 1 && r.Threads != 2) {
			t.Errorf("row %+v", r)
		}
		graphs[r.Graph]++
	}
	for _, g := range []string{"encoder", "classify", "detect", "segment"} {
		if graphs[g] != 2 {
			t.Errorf("graph %s timed %d times, want once per thread count: %v", g, graphs[g], graphs)
		}
	}
}
