package gemm

// packA copies the mc x kc block of A at a (row stride lda) into dst as
// micro-panels of mr rows: panel r holds dst[r*mr*kc + p*mr + i] = A[r*mr+i, p].
// Rows past mc are zero so that partial panels multiply like full ones.
func packA(mc, kc, mr int, a []float32, lda int, dst []float32) {
	for r := 0; r < mc; r += mr {
		pan := dst[r*kc : (r+mr)*kc]
		rows := min(mr, mc-r)
		for i := range rows {
			src := a[(r+i)*lda : (r+i)*lda+kc]
			for p, v := range src {
				pan[p*mr+i] = v
			}
		}
		for i := rows; i < mr; i++ {
			for p := range kc {
				pan[p*mr+i] = 0
			}
		}
	}
}

// packB copies the kc x nc block of B at b (row stride ldb) into dst as
// micro-panels of nr columns: panel s holds dst[s*nr*kc + p*nr + j] = B[p, s*nr+j].
// Columns past nc are zero. It walks B row by row, so reads are sequential,
// and moves whole micro-panel rows as fixed-size arrays instead of calling
// copy on 16 floats at a time.
func packB(kc, nc, nr int, b []float32, ldb int, dst []float32) {
	full := nc / nr * nr
	for p := range kc {
		src := b[p*ldb : p*ldb+nc]
		out := dst[p*nr:]
		s := 0
		switch nr {
		case 32:
			for ; s < full; s += 32 {
				*(*[32]float32)(out[s*kc:]) = *(*[32]float32)(src[s:])
			}
		case 16:
			for ; s < full; s += 16 {
				*(*[16]float32)(out[s*kc:]) = *(*[16]float32)(src[s:])
			}
		case 8:
			for ; s < full; s += 8 {
				*(*[8]float32)(out[s*kc:]) = *(*[8]float32)(src[s:])
			}
		}
		for ; s < full; s += nr {
			copy(out[s*kc:s*kc+nr], src[s:s+nr])
		}
		if full < nc {
			tail := out[full*kc : full*kc+nr]
			clear(tail[copy(tail, src[full:]):])
		}
	}
}

// packBT is packB for B given transposed: bt holds B^T (nc x kc, row stride ldb).
func packBT(kc, nc, nr int, bt []float32, ldb int, dst []float32) {
	for s := 0; s < nc; s += nr {
		pan := dst[s*kc : (s+nr)*kc]
		cols := min(nr, nc-s)
		for j := range cols {
			src := bt[(s+j)*ldb : (s+j)*ldb+kc]
			for p, v := range src {
				pan[p*nr+j] = v
			}
		}
		for j := cols; j < nr; j++ {
			for p := range kc {
				pan[p*nr+j] = 0
			}
		}
	}
}

// packBRows is packB for a B whose row p is b[off[p]+j0:], the rows
// gathered by offset (see SgemmPackedRows).
func packBRows(kc, nc, nr int, b []float32, off []int, j0 int, dst []float32) {
	full := nc / nr * nr
	for p := range kc {
		src := b[off[p]+j0 : off[p]+j0+nc]
		out := dst[p*nr:]
		s := 0
		switch nr {
		case 32:
			for ; s < full; s += 32 {
				*(*[32]float32)(out[s*kc:]) = *(*[32]float32)(src[s:])
			}
		case 16:
			for ; s < full; s += 16 {
				*(*[16]float32)(out[s*kc:]) = *(*[16]float32)(src[s:])
			}
		}
		for ; s < full; s += nr {
			copy(out[s*kc:s*kc+nr], src[s:s+nr])
		}
		if full < nc {
			tail := out[full*kc : full*kc+nr]
			clear(tail[copy(tail, src[full:]):])
		}
	}
}
