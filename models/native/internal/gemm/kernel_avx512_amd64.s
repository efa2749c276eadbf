//go:build !noasm

#include "textflag.h"

// One rank-1 update of the 8x32 tile held in Z0..Z15 (row i in Z(2i),
// Z(2i+1)): B's 32 values at (BX) go to Z16, Z17 and BX moves on by R9
// bytes, one row of B; each A value at aoff(AX) is broadcast and multiplied
// into its row.
#define STEP32(aoff) \
	VMOVUPS      (BX), Z16;       \
	VMOVUPS      64(BX), Z17;     \
	ADDQ         R9, BX;          \
	VBROADCASTSS aoff(AX), Z18;   \
	VBROADCASTSS aoff+4(AX), Z19; \
	VBROADCASTSS aoff+8(AX), Z20; \
	VBROADCASTSS aoff+12(AX), Z21; \
	VFMADD231PS  Z16, Z18, Z0;    \
	VFMADD231PS  Z17, Z18, Z1;    \
	VFMADD231PS  Z16, Z19, Z2;    \
	VFMADD231PS  Z17, Z19, Z3;    \
	VFMADD231PS  Z16, Z20, Z4;    \
	VFMADD231PS  Z17, Z20, Z5;    \
	VFMADD231PS  Z16, Z21, Z6;    \
	VFMADD231PS  Z17, Z21, Z7;    \
	VBROADCASTSS aoff+16(AX), Z22; \
	VBROADCASTSS aoff+20(AX), Z23; \
	VBROADCASTSS aoff+24(AX), Z24; \
	VBROADCASTSS aoff+28(AX), Z25; \
	VFMADD231PS  Z16, Z22, Z8;    \
	VFMADD231PS  Z17, Z22, Z9;    \
	VFMADD231PS  Z16, Z23, Z10;   \
	VFMADD231PS  Z17, Z23, Z11;   \
	VFMADD231PS  Z16, Z24, Z12;   \
	VFMADD231PS  Z17, Z24, Z13;   \
	VFMADD231PS  Z16, Z25, Z14;   \
	VFMADD231PS  Z17, Z25, Z15

// STORE2 writes (or adds, when R8 is set) the two registers of one C row
// at (DI) and moves DI on by one row.
#define STORE2(r0, r1) \
	TESTL   R8, R8;       \
	JEQ     3(PC);        \
	VADDPS  (DI), r0, r0; \
	VADDPS  64(DI), r1, r1; \
	VMOVUPS r0, (DI);     \
	VMOVUPS r1, 64(DI);   \
	ADDQ    DX, DI

// func micro8x32AVX512(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
// Computes tiles 8x32 tiles stacked down C: tile t uses the A panel at
// ap[t*kc*8:] and C rows from t*8 on; every tile uses the same B panel.
TEXT ·micro8x32AVX512(SB), NOSPLIT, $0-105
	MOVQ    tiles+8(FP), R10
	MOVQ    ap_base+16(FP), AX
	MOVQ    ldb+64(FP), R9
	SHLQ    $2, R9
	MOVQ    c_base+72(FP), DI
	MOVQ    ldc+96(FP), DX
	SHLQ    $2, DX
	MOVBLZX acc+104(FP), R8

tile:
	MOVQ kc+0(FP), CX
	MOVQ bp_base+40(FP), BX

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

loop4:
	CMPQ CX, $4
	JLT  tail
	STEP32(0)
	STEP32(32)
	STEP32(64)
	STEP32(96)
	ADDQ $128, AX
	SUBQ $4, CX
	JMP  loop4

tail:
	TESTQ CX, CX
	JEQ   store
	STEP32(0)
	ADDQ  $32, AX
	DECQ  CX
	JMP   tail

store:
	STORE2(Z0, Z1)
	STORE2(Z2, Z3)
	STORE2(Z4, Z5)
	STORE2(Z6, Z7)
	STORE2(Z8, Z9)
	STORE2(Z10, Z11)
	STORE2(Z12, Z13)
	STORE2(Z14, Z15)

	DECQ R10
	JNE  tile
	VZEROUPPER
	RET

// One rank-1 update of the 8x16 tile held in Z0..Z7 (row i in Zi).
#define STEP16(aoff) \
	VMOVUPS      (BX), Z16;       \
	ADDQ         R9, BX;          \
	VBROADCASTSS aoff(AX), Z18;   \
	VBROADCASTSS aoff+4(AX), Z19; \
	VBROADCASTSS aoff+8(AX), Z20; \
	VBROADCASTSS aoff+12(AX), Z21; \
	VFMADD231PS  Z16, Z18, Z0;    \
	VFMADD231PS  Z16, Z19, Z1;    \
	VFMADD231PS  Z16, Z20, Z2;    \
	VFMADD231PS  Z16, Z21, Z3;    \
	VBROADCASTSS aoff+16(AX), Z22; \
	VBROADCASTSS aoff+20(AX), Z23; \
	VBROADCASTSS aoff+24(AX), Z24; \
	VBROADCASTSS aoff+28(AX), Z25; \
	VFMADD231PS  Z16, Z22, Z4;    \
	VFMADD231PS  Z16, Z23, Z5;    \
	VFMADD231PS  Z16, Z24, Z6;    \
	VFMADD231PS  Z16, Z25, Z7

// STORE1 writes (or adds, when R8 is set) one C row of 16 at (DI) and
// moves DI on by one row.
#define STORE1(r0) \
	TESTL   R8, R8;       \
	JEQ     2(PC);        \
	VADDPS  (DI), r0, r0; \
	VMOVUPS r0, (DI);     \
	ADDQ    DX, DI

// func micro8x16AVX512(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
// micro8x32AVX512 for tiles 16 columns wide: the last, narrow panel of a
// block.
TEXT ·micro8x16AVX512(SB), NOSPLIT, $0-105
	MOVQ    tiles+8(FP), R10
	MOVQ    ap_base+16(FP), AX
	MOVQ    ldb+64(FP), R9
	SHLQ    $2, R9
	MOVQ    c_base+72(FP), DI
	MOVQ    ldc+96(FP), DX
	SHLQ    $2, DX
	MOVBLZX acc+104(FP), R8

htile:
	MOVQ kc+0(FP), CX
	MOVQ bp_base+40(FP), BX

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7

hloop4:
	CMPQ CX, $4
	JLT  htail
	STEP16(0)
	STEP16(32)
	STEP16(64)
	STEP16(96)
	ADDQ $128, AX
	SUBQ $4, CX
	JMP  hloop4

htail:
	TESTQ CX, CX
	JEQ   hstore
	STEP16(0)
	ADDQ  $32, AX
	DECQ  CX
	JMP   htail

hstore:
	STORE1(Z0)
	STORE1(Z1)
	STORE1(Z2)
	STORE1(Z3)
	STORE1(Z4)
	STORE1(Z5)
	STORE1(Z6)
	STORE1(Z7)

	DECQ R10
	JNE  htile
	VZEROUPPER
	RET

// func packBRows32AVX512(kc, panels int, b []float32, off []int, dst []float32, lo, hi int)
// Packs the kc rows b[off[p]:] into dst in packB's layout for nr = 32:
// panels whole 32-column panels, then, when lo is not zero, one partial
// panel whose columns are selected by the masks lo (columns 0-15) and hi
// (16-31), the others zero.
TEXT ·packBRows32AVX512(SB), NOSPLIT, $0-104
	MOVQ  kc+0(FP), CX
	MOVQ  panels+8(FP), R9
	MOVQ  b_base+16(FP), R13
	MOVQ  off_base+40(FP), R14
	MOVQ  dst_base+64(FP), DI
	MOVQ  lo+88(FP), AX
	KMOVW AX, K1
	MOVQ  hi+96(FP), AX
	KMOVW AX, K2
	MOVQ  lo+88(FP), R15
	MOVQ  CX, R10
	SHLQ  $7, R10 // panel stride in bytes: kc*32*4

rrow:
	TESTQ CX, CX
	JEQ   rdone
	MOVQ  (R14), R11
	LEAQ  (R13)(R11*4), R11
	MOVQ  DI, R12
	MOVQ  R9, BX

rpanel:
	TESTQ   BX, BX
	JEQ     rtail
	VMOVUPS (R11), Z0
	VMOVUPS 64(R11), Z1
	VMOVUPS Z0, (R12)
	VMOVUPS Z1, 64(R12)
	ADDQ    $128, R11
	ADDQ    R10, R12
	DECQ    BX
	JMP     rpanel

rtail:
	TESTQ     R15, R15
	JEQ       rnextrow
	VMOVUPS.Z (R11), K1, Z0
	VMOVUPS.Z 64(R11), K2, Z1
	VMOVUPS   Z0, (R12)
	VMOVUPS   Z1, 64(R12)

rnextrow:
	ADDQ $8, R14
	ADDQ $128, DI
	DECQ CX
	JMP  rrow

rdone:
	VZEROUPPER
	RET

// func packB32AVX512(kc, panels int, b []float32, ldb int, dst []float32, lo, hi int)
// packBRows32AVX512 for the kc rows of B at b with row stride ldb.
TEXT ·packB32AVX512(SB), NOSPLIT, $0-88
	MOVQ  kc+0(FP), CX
	MOVQ  panels+8(FP), R9
	MOVQ  b_base+16(FP), R13
	MOVQ  ldb+40(FP), DX
	SHLQ  $2, DX
	MOVQ  dst_base+48(FP), DI
	MOVQ  lo+72(FP), AX
	KMOVW AX, K1
	MOVQ  hi+80(FP), AX
	KMOVW AX, K2
	MOVQ  lo+72(FP), R15
	MOVQ  CX, R10
	SHLQ  $7, R10 // panel stride in bytes: kc*32*4

brow:
	TESTQ CX, CX
	JEQ   bdone
	MOVQ  R13, R11
	MOVQ  DI, R12
	MOVQ  R9, BX

bpanel:
	TESTQ   BX, BX
	JEQ     btail
	VMOVUPS (R11), Z0
	VMOVUPS 64(R11), Z1
	VMOVUPS Z0, (R12)
	VMOVUPS Z1, 64(R12)
	ADDQ    $128, R11
	ADDQ    R10, R12
	DECQ    BX
	JMP     bpanel

btail:
	TESTQ     R15, R15
	JEQ       bnextrow
	VMOVUPS.Z (R11), K1, Z0
	VMOVUPS.Z 64(R11), K2, Z1
	VMOVUPS   Z0, (R12)
	VMOVUPS   Z1, 64(R12)

bnextrow:
	ADDQ DX, R13
	ADDQ $128, DI
	DECQ CX
	JMP  brow

bdone:
	VZEROUPPER
	RET

// ROWB32 (ROWB16) loads B's row for this step, at (BX) + off[p]*4 with off at (R14),
// into Z16 (and Z17 for 32 columns), and moves R14 on.
#define ROWB32 \
	MOVQ    (R14), R11;       \
	LEAQ    (BX)(R11*4), R12; \
	ADDQ    $8, R14;          \
	VMOVUPS (R12), Z16;       \
	VMOVUPS 64(R12), Z17

#define ROWB16 \
	MOVQ    (R14), R11;       \
	LEAQ    (BX)(R11*4), R12; \
	ADDQ    $8, R14;          \
	VMOVUPS (R12), Z16

// FMA32 multiplies the 8 A values at aoff(AX) into the 8x32 tile with B's
// row in Z16, Z17.
#define FMA32(aoff) \
	VBROADCASTSS aoff(AX), Z18;   \
	VBROADCASTSS aoff+4(AX), Z19; \
	VBROADCASTSS aoff+8(AX), Z20; \
	VBROADCASTSS aoff+12(AX), Z21; \
	VFMADD231PS  Z16, Z18, Z0;    \
	VFMADD231PS  Z17, Z18, Z1;    \
	VFMADD231PS  Z16, Z19, Z2;    \
	VFMADD231PS  Z17, Z19, Z3;    \
	VFMADD231PS  Z16, Z20, Z4;    \
	VFMADD231PS  Z17, Z20, Z5;    \
	VFMADD231PS  Z16, Z21, Z6;    \
	VFMADD231PS  Z17, Z21, Z7;    \
	VBROADCASTSS aoff+16(AX), Z22; \
	VBROADCASTSS aoff+20(AX), Z23; \
	VBROADCASTSS aoff+24(AX), Z24; \
	VBROADCASTSS aoff+28(AX), Z25; \
	VFMADD231PS  Z16, Z22, Z8;    \
	VFMADD231PS  Z17, Z22, Z9;    \
	VFMADD231PS  Z16, Z23, Z10;   \
	VFMADD231PS  Z17, Z23, Z11;   \
	VFMADD231PS  Z16, Z24, Z12;   \
	VFMADD231PS  Z17, Z24, Z13;   \
	VFMADD231PS  Z16, Z25, Z14;   \
	VFMADD231PS  Z17, Z25, Z15

#define FMA16(aoff) \
	VBROADCASTSS aoff(AX), Z18;   \
	VBROADCASTSS aoff+4(AX), Z19; \
	VBROADCASTSS aoff+8(AX), Z20; \
	VBROADCASTSS aoff+12(AX), Z21; \
	VFMADD231PS  Z16, Z18, Z0;    \
	VFMADD231PS  Z16, Z19, Z1;    \
	VFMADD231PS  Z16, Z20, Z2;    \
	VFMADD231PS  Z16, Z21, Z3;    \
	VBROADCASTSS aoff+16(AX), Z22; \
	VBROADCASTSS aoff+20(AX), Z23; \
	VBROADCASTSS aoff+24(AX), Z24; \
	VBROADCASTSS aoff+28(AX), Z25; \
	VFMADD231PS  Z16, Z22, Z4;    \
	VFMADD231PS  Z16, Z23, Z5;    \
	VFMADD231PS  Z16, Z24, Z6;    \
	VFMADD231PS  Z16, Z25, Z7

// func micro8x32RowsAVX512(kc, tiles int, ap, b []float32, off []int, c []float32, ldc int, acc bool)
// micro8x32AVX512 with B's rows read in place, gathered by offset: row p
// is b[off[p]:] (no packed panel).
TEXT ·micro8x32RowsAVX512(SB), NOSPLIT, $0-121
	MOVQ    tiles+8(FP), R10
	MOVQ    ap_base+16(FP), AX
	MOVQ    b_base+40(FP), BX
	MOVQ    c_base+88(FP), DI
	MOVQ    ldc+112(FP), DX
	SHLQ    $2, DX
	MOVBLZX acc+120(FP), R8

gtile:
	MOVQ kc+0(FP), CX
	MOVQ off_base+64(FP), R14

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

gloop:
	ROWB32
	FMA32(0)
	ADDQ $32, AX
	DECQ CX
	JNE  gloop

	STORE2(Z0, Z1)
	STORE2(Z2, Z3)
	STORE2(Z4, Z5)
	STORE2(Z6, Z7)
	STORE2(Z8, Z9)
	STORE2(Z10, Z11)
	STORE2(Z12, Z13)
	STORE2(Z14, Z15)

	DECQ R10
	JNE  gtile
	VZEROUPPER
	RET

// func micro8x16RowsAVX512(kc, tiles int, ap, b []float32, off []int, c []float32, ldc int, acc bool)
// micro8x32RowsAVX512 for tiles 16 columns wide.
TEXT ·micro8x16RowsAVX512(SB), NOSPLIT, $0-121
	MOVQ    tiles+8(FP), R10
	MOVQ    ap_base+16(FP), AX
	MOVQ    b_base+40(FP), BX
	MOVQ    c_base+88(FP), DI
	MOVQ    ldc+112(FP), DX
	SHLQ    $2, DX
	MOVBLZX acc+120(FP), R8

ghtile:
	MOVQ kc+0(FP), CX
	MOVQ off_base+64(FP), R14

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7

ghloop:
	ROWB16
	FMA16(0)
	ADDQ $32, AX
	DECQ CX
	JNE  ghloop

	STORE1(Z0)
	STORE1(Z1)
	STORE1(Z2)
	STORE1(Z3)
	STORE1(Z4)
	STORE1(Z5)
	STORE1(Z6)
	STORE1(Z7)

	DECQ R10
	JNE  ghtile
	VZEROUPPER
	RET

// One rank-1 update of the 8x32 tile in Z0..Z15 with A gathered: koff[p]
// at ko(DX) indexes the eight row pointers SI, DI, R8..R13; B's row is at
// bo(BX).
#define GSTEP32(ko, bo) \
	MOVQ         ko(DX), AX;          \
	VMOVUPS      bo(BX), Z16;         \
	VMOVUPS      bo+64(BX), Z17;      \
	VBROADCASTSS (SI)(AX*4), Z18;     \
	VBROADCASTSS (DI)(AX*4), Z19;     \
	VBROADCASTSS (R8)(AX*4), Z20;     \
	VBROADCASTSS (R9)(AX*4), Z21;     \
	VFMADD231PS  Z16, Z18, Z0;        \
	VFMADD231PS  Z17, Z18, Z1;        \
	VFMADD231PS  Z16, Z19, Z2;        \
	VFMADD231PS  Z17, Z19, Z3;        \
	VFMADD231PS  Z16, Z20, Z4;        \
	VFMADD231PS  Z17, Z20, Z5;        \
	VFMADD231PS  Z16, Z21, Z6;        \
	VFMADD231PS  Z17, Z21, Z7;        \
	VBROADCASTSS (R10)(AX*4), Z22;    \
	VBROADCASTSS (R11)(AX*4), Z23;    \
	VBROADCASTSS (R12)(AX*4), Z24;    \
	VBROADCASTSS (R13)(AX*4), Z25;    \
	VFMADD231PS  Z16, Z22, Z8;        \
	VFMADD231PS  Z17, Z22, Z9;        \
	VFMADD231PS  Z16, Z23, Z10;       \
	VFMADD231PS  Z17, Z23, Z11;       \
	VFMADD231PS  Z16, Z24, Z12;       \
	VFMADD231PS  Z17, Z24, Z13;       \
	VFMADD231PS  Z16, Z25, Z14;       \
	VFMADD231PS  Z17, Z25, Z15

// func gather8x32AVX512(kc int, a []float32, ro, koff []int, bp, c []float32, ldc int, acc bool)
// One 8x32 tile: row i of A is read at &a[ro[i]], indexed by koff[p];
// B's panel rows are 32 floats apart.
TEXT ·gather8x32AVX512(SB), NOSPLIT, $0-137
	MOVQ a_base+8(FP), AX
	MOVQ ro_base+32(FP), BX
	MOVQ 0(BX), SI
	LEAQ (AX)(SI*4), SI
	MOVQ 8(BX), DI
	LEAQ (AX)(DI*4), DI
	MOVQ 16(BX), R8
	LEAQ (AX)(R8*4), R8
	MOVQ 24(BX), R9
	LEAQ (AX)(R9*4), R9
	MOVQ 32(BX), R10
	LEAQ (AX)(R10*4), R10
	MOVQ 40(BX), R11
	LEAQ (AX)(R11*4), R11
	MOVQ 48(BX), R12
	LEAQ (AX)(R12*4), R12
	MOVQ 56(BX), R13
	LEAQ (AX)(R13*4), R13
	MOVQ koff_base+56(FP), DX
	MOVQ bp_base+80(FP), BX
	MOVQ kc+0(FP), CX

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

gloop4:
	CMPQ CX, $4
	JLT  gtail
	GSTEP32(0, 0)
	GSTEP32(8, 128)
	GSTEP32(16, 256)
	GSTEP32(24, 384)
	ADDQ $32, DX
	ADDQ $512, BX
	SUBQ $4, CX
	JMP  gloop4

gtail:
	TESTQ CX, CX
	JEQ   gstore
	GSTEP32(0, 0)
	ADDQ  $8, DX
	ADDQ  $128, BX
	DECQ  CX
	JMP   gtail

gstore:
	MOVQ    c_base+104(FP), DI
	MOVQ    ldc+128(FP), DX
	SHLQ    $2, DX
	MOVBLZX acc+136(FP), R8
	STORE2(Z0, Z1)
	STORE2(Z2, Z3)
	STORE2(Z4, Z5)
	STORE2(Z6, Z7)
	STORE2(Z8, Z9)
	STORE2(Z10, Z11)
	STORE2(Z12, Z13)
	STORE2(Z14, Z15)
	VZEROUPPER
	RET
