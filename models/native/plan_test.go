package native

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

func loadTestdata(t *testing.T, name string, threads int) *Model {
	b, err := os.ReadFile("../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := Load(m, threads)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

// TestPlanFusion checks what the planner makes of the reference graphs:
// the GDN chains become one step each, ReLUs disappear into the
// convolutions and the residual Adds before them, shape arithmetic leaves
// no steps, and buffers are reused.
func TestPlanFusion(t *testing.T) {
	tests := []struct {
		graph string
		want  string // the plan's steps
		bufs  int    // physical buffers at most
	}{
		{"es_encoder_64.onnx", "Conv GDN Conv GDN Conv", 3},
		{"cls_head.onnx", "Conv Conv Conv Add Conv Conv Conv Add GlobalAveragePool Gemm", 4},
		{"seg_head.onnx", "Conv ConvTranspose Resize Conv Resize Conv Conv Resize", 2},
	}
	for _, tt := range tests {
		t.Run(tt.graph, func(t *testing.T) {
			mod := loadTestdata(t, tt.graph, 1)
			if len(mod.plans) != 1 {
				t.Fatalf("%d plans after Load, want 1", len(mod.plans))
			}
			for _, p := range mod.plans {
				var ops []string
				for _, s := range p.steps {
					ops = append(ops, s.op)
				}
				if got := strings.Join(ops, " "); got != tt.want {
					t.Errorf("steps %q, want %q", got, tt.want)
				}
				if len(p.bufSize) > tt.bufs {
					t.Errorf("%d buffers, want at most %d", len(p.bufSize), tt.bufs)
				}
			}
		})
	}
}

// TestPlanCacheBounded runs more distinct batch sizes than the model keeps
// plans for.
func TestPlanCacheBounded(t *testing.T) {
	mod := loadTestdata(t, "cls_head.onnx", 2)
	defer mod.Close()
	for batch := 1; batch <= maxPlans+4; batch++ {
		x := make([]float32, batch*24*28*28)
		out, err := mod.Run(context.Background(), []Tensor{{Shape: []int{batch, 24, 28, 28}, Data: x}})
		if err != nil {
			t.Fatal(err)
		}
		if out[0].Shape[0] != batch {
			t.Fatalf("batch %d: output shape %v", batch, out[0].Shape)
		}
		if n := len(mod.plans); n > maxPlans {
			t.Fatalf("%d plans kept, limit %d", n, maxPlans)
		}
	}
}
