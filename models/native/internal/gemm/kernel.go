package gemm

// kernel is a register-blocked micro-kernel and the tile shape it computes.
type kernel struct {
	name   string
	mr, nr int
	// micro computes tiles mr x nr tiles stacked down C: tile t is
	// C = Ap*Bp (C += Ap*Bp when acc is set) for the packed A micro-panel
	// at ap[t*kc*mr:] (kc x mr, see packA) and the kc x nr panel of B at bp
	// with row stride ldb (nr for a panel packed by packB), written to the
	// rows of c (row stride ldc) from t*mr on. kc, tiles >= 1.
	micro func(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
	// microHalf, if not nil, is micro for tiles nr/2 columns wide (the
	// rest of the B panel unread): the last panel of a block when it is
	// that narrow.
	microHalf func(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
	// microRows, if not nil, is micro with B's rows read in place from
	// b[off[p]:] (maxOff the largest offset; b holds the tile's columns
	// after it) instead of a packed panel; microRowsHalf is the same for
	// tiles nr/2 wide.
	microRows, microRowsHalf func(kc, tiles int, ap, b []float32, off []int, maxOff int, c []float32, ldc int, acc bool)
	// microGatherA, if not nil, computes one mr x nr tile C = A*B (C +=
	// A*B when acc is set) of depth kc with A read in place: A[i, p] =
	// a[ro[i] + koff[p]] (len(ro) = mr, offsets checked by the caller) and
	// B the kc x nr panel at bp with row stride nr (SgemmGatherA).
	microGatherA func(kc int, a []float32, ro, koff []int, bp, c []float32, ldc int, acc bool)
	// packA packs A for this kernel as the function packA does; nil means
	// packA itself.
	packA func(mc, kc, mr int, a []float32, lda int, dst []float32)
	// packB is the same for packB.
	packB func(kc, nc, nr int, b []float32, ldb int, dst []float32)
	// packBT is the same for packBT.
	packBT func(kc, nc, nr int, bt []float32, ldb int, dst []float32)
	// packBRows is the same for packBRows.
	packBRows func(kc, nc, nr int, b []float32, off []int, j0 int, dst []float32)
}

// activeKernel is the fastest kernel this CPU runs (runnableKernels, in
// kernel_*.go, lists them).
var activeKernel = runnableKernels()[0]

// genericKernel is the portable 4x8 kernel in Go.
var genericKernel = &kernel{name: "generic4x8", mr: 4, nr: 8, micro: micro4x8}

// micro4x8 is kernel.micro for 4x8 tiles in portable Go.
func micro4x8(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool) {
	for t := range tiles {
		tile4x8(kc, ap[t*kc*4:], bp, ldb, c[t*4*ldc:], ldc, acc)
	}
}

// tile4x8 computes one 4x8 tile. Its 32 accumulators are locals so that the
// compiler keeps as many as it can in registers.
func tile4x8(kc int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool) {
	var c00, c01, c02, c03, c04, c05, c06, c07 float32
	var c10, c11, c12, c13, c14, c15, c16, c17 float32
	var c20, c21, c22, c23, c24, c25, c26, c27 float32
	var c30, c31, c32, c33, c34, c35, c36, c37 float32
	ap, bp = ap[:kc*4], bp[:(kc-1)*ldb+8]
	for p := 0; p < kc; p++ {
		a := ap[p*4 : p*4+4 : p*4+4]
		b := bp[p*ldb : p*ldb+8 : p*ldb+8]
		a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
		b0, b1, b2, b3, b4, b5, b6, b7 := b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c04 += a0 * b4
		c05 += a0 * b5
		c06 += a0 * b6
		c07 += a0 * b7
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c14 += a1 * b4
		c15 += a1 * b5
		c16 += a1 * b6
		c17 += a1 * b7
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c24 += a2 * b4
		c25 += a2 * b5
		c26 += a2 * b6
		c27 += a2 * b7
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
		c34 += a3 * b4
		c35 += a3 * b5
		c36 += a3 * b6
		c37 += a3 * b7
	}
	store8(c[0*ldc:0*ldc+8], acc, c00, c01, c02, c03, c04, c05, c06, c07)
	store8(c[1*ldc:1*ldc+8], acc, c10, c11, c12, c13, c14, c15, c16, c17)
	store8(c[2*ldc:2*ldc+8], acc, c20, c21, c22, c23, c24, c25, c26, c27)
	store8(c[3*ldc:3*ldc+8], acc, c30, c31, c32, c33, c34, c35, c36, c37)
}

func store8(row []float32, acc bool, v0, v1, v2, v3, v4, v5, v6, v7 float32) {
	row = row[:8:8]
	if acc {
		v0 += row[0]
		v1 += row[1]
		v2 += row[2]
		v3 += row[3]
		v4 += row[4]
		v5 += row[5]
		v6 += row[6]
		v7 += row[7]
	}
	row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7] = v0, v1, v2, v3, v4, v5, v6, v7
}

// packAFor packs A for kern (see packA).
func packAFor(kern *kernel, mc, kc int, a []float32, lda int, dst []float32) {
	if kern.packA != nil {
		kern.packA(mc, kc, kern.mr, a, lda, dst)
		return
	}
	packA(mc, kc, kern.mr, a, lda, dst)
}
