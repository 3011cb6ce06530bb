;; Inference kernels for the zoo's Llama, in WebAssembly SIMD.
;;
;; Every result here is bit-identical to what the reference path (tfjs-backend-wasm 4.22, built on
;; XNNPACK commit 5e8033a7) computes for the same inputs, because each kernel performs the same
;; float32 operations in the same order:
;; - fc: XNNPACK's f32 gemm "splat" kernels accumulate each output over k in ascending order, one
;;   rounded multiply and one rounded add per step, starting from zero (no bias).
;; - swiglu: XNNPACK's f32 sigmoid (wasmsimd rr2_p5_div), then tfjs's two elementwise multiplies.
;; - attend: tfjs-wasm's slow batched matmul for q.k (one block of at most 48 along the head
;;   dimension) and for p.v (partial sums over blocks of 48 keys added to the output), and
;;   XNNPACK's softmax (max, exp by rr2_p5 with lane sums by key index mod 4, tail added in order,
;;   then a multiply by 1/sum).
;; - rmsnorm, rope, residual adds: tfjs's elementwise float32 ops (a sequential sum of squares,
;;   a divide, 1 / sqrt, products), lane by lane.
;; Key indices are padded positions: the reference left-pads prompts in a batch, and both the
;; softmax lane a key falls in and the 48-key block it is summed in depend on that position.
;; Masked keys contribute exact zeros there, so they are skipped here.
;; Only the association of each sum is fixed; which sums run side by side is free, so the loops
;; below keep several independent sums in flight (keys, rows or columns) to hide the latency of
;; one float add, and the data are laid out so the innermost loops read contiguous memory.
;; All pointers are byte offsets into the exported memory; lengths and strides count floats.
(module
  (memory (export "memory") 1)

  ;; out[m][n] = sum over k ascending of a[m][k] * w(k, n), for m < M rounded up to 4 (rows past M
  ;; repeat row M-1; the caller leaves room for them in out and ignores them). w is packed in panels
  ;; of 8 columns, [N/8][K][8], N a multiple of 8. pk: scratch of 4 * K floats per 4 rows, where a
  ;; is first packed as [M/4][K][4] so that one 4x8 tile reads its 4 rows from one pointer.
  (func $fc (export "fc")
    (param $a i32) (param $lda i32) (param $w i32) (param $out i32) (param $ldo i32)
    (param $M i32) (param $K i32) (param $N i32) (param $pk i32)
    (local $m i32) (local $n i32) (local $k i32) (local $wp i32) (local $wp0 i32) (local $o i32)
    (local $ap i32) (local $ap0 i32) (local $aend i32) (local $kb i32) (local $last i32)
    (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (if (i32.eqz (local.get $M)) (then (return)))
    (local.set $lda (i32.shl (local.get $lda) (i32.const 2)))
    (local.set $ldo (i32.shl (local.get $ldo) (i32.const 2)))
    (local.set $kb (i32.shl (local.get $K) (i32.const 4)))
    (local.set $last (i32.sub (local.get $M) (i32.const 1)))
    ;; pack: four rows at a time, 4x4 blocks transposed
    (local.set $ap (local.get $pk))
    (block $packdone
      (loop $pack
        (br_if $packdone (i32.ge_u (local.get $m) (local.get $M)))
        (local.set $r0 (i32.add (local.get $a) (i32.mul (local.get $m) (local.get $lda))))
        (local.set $r1 (i32.add (local.get $a) (i32.mul
          (select (i32.add (local.get $m) (i32.const 1)) (local.get $last) (i32.lt_u (i32.add (local.get $m) (i32.const 1)) (local.get $M)))
          (local.get $lda))))
        (local.set $r2 (i32.add (local.get $a) (i32.mul
          (select (i32.add (local.get $m) (i32.const 2)) (local.get $last) (i32.lt_u (i32.add (local.get $m) (i32.const 2)) (local.get $M)))
          (local.get $lda))))
        (local.set $r3 (i32.add (local.get $a) (i32.mul
          (select (i32.add (local.get $m) (i32.const 3)) (local.get $last) (i32.lt_u (i32.add (local.get $m) (i32.const 3)) (local.get $M)))
          (local.get $lda))))
        (local.set $k (i32.const 0))
        (block $p4done
          (loop $p4
            (br_if $p4done (i32.gt_u (i32.add (local.get $k) (i32.const 4)) (local.get $K)))
            (local.set $v0 (v128.load (local.get $r0)))
            (local.set $v1 (v128.load (local.get $r1)))
            (local.set $v2 (v128.load (local.get $r2)))
            (local.set $v3 (v128.load (local.get $r3)))
            (local.set $b0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))
            (local.set $b1 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
            (local.set $v0 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1)))
            (local.set $v2 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
            (v128.store (local.get $ap) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $b0) (local.get $b1)))
            (v128.store offset=16 (local.get $ap) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $b0) (local.get $b1)))
            (v128.store offset=32 (local.get $ap) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $v0) (local.get $v2)))
            (v128.store offset=48 (local.get $ap) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $v0) (local.get $v2)))
            (local.set $r0 (i32.add (local.get $r0) (i32.const 16)))
            (local.set $r1 (i32.add (local.get $r1) (i32.const 16)))
            (local.set $r2 (i32.add (local.get $r2) (i32.const 16)))
            (local.set $r3 (i32.add (local.get $r3) (i32.const 16)))
            (local.set $ap (i32.add (local.get $ap) (i32.const 64)))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $p4)))
        (block $p1done
          (loop $p1
            (br_if $p1done (i32.ge_u (local.get $k) (local.get $K)))
            (f32.store (local.get $ap) (f32.load (local.get $r0)))
            (f32.store offset=4 (local.get $ap) (f32.load (local.get $r1)))
            (f32.store offset=8 (local.get $ap) (f32.load (local.get $r2)))
            (f32.store offset=12 (local.get $ap) (f32.load (local.get $r3)))
            (local.set $r0 (i32.add (local.get $r0) (i32.const 4)))
            (local.set $r1 (i32.add (local.get $r1) (i32.const 4)))
            (local.set $r2 (i32.add (local.get $r2) (i32.const 4)))
            (local.set $r3 (i32.add (local.get $r3) (i32.const 4)))
            (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $p1)))
        (local.set $m (i32.add (local.get $m) (i32.const 4)))
        (br $pack)))
    ;; 4x8 tiles: rows outer (a tile's packed rows stay in L1), panels inner
    (local.set $m (i32.const 0))
    (local.set $ap0 (local.get $pk))
    (block $rowsdone
      (loop $rows
        (br_if $rowsdone (i32.ge_u (local.get $m) (local.get $M)))
        (local.set $n (i32.const 0))
        (local.set $wp0 (local.get $w))
        (local.set $aend (i32.add (local.get $ap0) (local.get $kb)))
        (block $colsdone
          (loop $cols
            (br_if $colsdone (i32.ge_u (local.get $n) (local.get $N)))
            (local.set $c00 (v128.const i32x4 0 0 0 0)) (local.set $c01 (v128.const i32x4 0 0 0 0))
            (local.set $c10 (v128.const i32x4 0 0 0 0)) (local.set $c11 (v128.const i32x4 0 0 0 0))
            (local.set $c20 (v128.const i32x4 0 0 0 0)) (local.set $c21 (v128.const i32x4 0 0 0 0))
            (local.set $c30 (v128.const i32x4 0 0 0 0)) (local.set $c31 (v128.const i32x4 0 0 0 0))
            (local.set $ap (local.get $ap0))
            (local.set $wp (local.get $wp0))
            (loop $kloop
              (local.set $b0 (v128.load (local.get $wp))) (local.set $b1 (v128.load offset=16 (local.get $wp)))
              (local.set $x (v128.load32_splat offset=0 (local.get $ap)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
              (local.set $x (v128.load32_splat offset=4 (local.get $ap)))
              (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $b0))))
              (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $b1))))
              (local.set $x (v128.load32_splat offset=8 (local.get $ap)))
              (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $b0))))
              (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $b1))))
              (local.set $x (v128.load32_splat offset=12 (local.get $ap)))
              (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $b0))))
              (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $b1))))
              (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
              (local.set $wp (i32.add (local.get $wp) (i32.const 32)))
              (br_if $kloop (i32.ne (local.get $ap) (local.get $aend))))
            (local.set $o (i32.add (local.get $out)
              (i32.add (i32.mul (local.get $m) (local.get $ldo)) (i32.shl (local.get $n) (i32.const 2)))))
            (v128.store (local.get $o) (local.get $c00)) (v128.store offset=16 (local.get $o) (local.get $c01))
            (local.set $o (i32.add (local.get $o) (local.get $ldo)))
            (v128.store (local.get $o) (local.get $c10)) (v128.store offset=16 (local.get $o) (local.get $c11))
            (local.set $o (i32.add (local.get $o) (local.get $ldo)))
            (v128.store (local.get $o) (local.get $c20)) (v128.store offset=16 (local.get $o) (local.get $c21))
            (local.set $o (i32.add (local.get $o) (local.get $ldo)))
            (v128.store (local.get $o) (local.get $c30)) (v128.store offset=16 (local.get $o) (local.get $c31))
            (local.set $wp0 (local.get $wp))
            (local.set $n (i32.add (local.get $n) (i32.const 8)))
            (br $cols)))
        (local.set $ap0 (local.get $aend))
        (local.set $m (i32.add (local.get $m) (i32.const 4)))
        (br $rows))))

  ;; XNNPACK's exp(x) for x <= 0 (f32 raddstoreexpminusmax, wasmsimd rr2_p5), zero below the cutoff.
  (func $expminus (param $x v128) (result v128)
    (local $n v128) (local $s v128) (local $t v128) (local $p v128) (local $f v128)
    (local.set $n (f32x4.add (v128.const f32x4 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23)
      (f32x4.mul (local.get $x) (v128.const f32x4 0x1.715476p+0 0x1.715476p+0 0x1.715476p+0 0x1.715476p+0))))
    (local.set $s (i32x4.shl (local.get $n) (i32.const 23)))
    (local.set $n (f32x4.sub (local.get $n) (v128.const f32x4 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23)))
    (local.set $t (f32x4.add (local.get $x)
      (f32x4.mul (local.get $n) (v128.const f32x4 -0x1.62E400p-1 -0x1.62E400p-1 -0x1.62E400p-1 -0x1.62E400p-1))))
    (local.set $t (f32x4.add (local.get $t)
      (f32x4.mul (local.get $n) (v128.const f32x4 -0x1.7F7D1Cp-20 -0x1.7F7D1Cp-20 -0x1.7F7D1Cp-20 -0x1.7F7D1Cp-20))))
    (local.set $p (f32x4.add (v128.const f32x4 0x1.573A1Ap-5 0x1.573A1Ap-5 0x1.573A1Ap-5 0x1.573A1Ap-5)
      (f32x4.mul (v128.const f32x4 0x1.0F9F9Cp-7 0x1.0F9F9Cp-7 0x1.0F9F9Cp-7 0x1.0F9F9Cp-7) (local.get $t))))
    (local.set $p (f32x4.add (v128.const f32x4 0x1.555A80p-3 0x1.555A80p-3 0x1.555A80p-3 0x1.555A80p-3)
      (f32x4.mul (local.get $p) (local.get $t))))
    (local.set $p (f32x4.add (v128.const f32x4 0x1.FFFDC6p-2 0x1.FFFDC6p-2 0x1.FFFDC6p-2 0x1.FFFDC6p-2)
      (f32x4.mul (local.get $p) (local.get $t))))
    (local.set $p (f32x4.add (v128.const f32x4 0x1.FFFFF6p-1 0x1.FFFFF6p-1 0x1.FFFFF6p-1 0x1.FFFFF6p-1)
      (f32x4.mul (local.get $p) (local.get $t))))
    (local.set $t (f32x4.mul (local.get $t) (local.get $s)))
    (local.set $f (f32x4.add (local.get $s) (f32x4.mul (local.get $t) (local.get $p))))
    (v128.andnot (local.get $f)
      (f32x4.lt (local.get $x) (v128.const f32x4 -0x1.5D589Ep6 -0x1.5D589Ep6 -0x1.5D589Ep6 -0x1.5D589Ep6))))

  ;; out[r][i] = (g * sigmoid(g)) * u for g = gu[r][i], u = gu[r][ff + i]; ff a multiple of 4. The
  ;; sigmoid is XNNPACK's f32 sigmoid (wasmsimd rr2_p5_div), written inline: the engine does not
  ;; inline calls, and a call per vector spills every live vector around it.
  (func $swiglu (export "swiglu")
    (param $gu i32) (param $ldgu i32) (param $out i32) (param $ldo i32) (param $rows i32) (param $ff i32)
    (local $r i32) (local $i i32) (local $g v128) (local $gp i32) (local $op i32) (local $upoff i32)
    (local $z v128) (local $n v128) (local $s v128) (local $t v128) (local $p v128) (local $e v128) (local $f v128) (local $sg v128)
    (local.set $upoff (i32.shl (local.get $ff) (i32.const 2)))
    (block $done
      (loop $rowloop
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $gp (i32.add (local.get $gu) (i32.shl (i32.mul (local.get $r) (local.get $ldgu)) (i32.const 2))))
        (local.set $op (i32.add (local.get $out) (i32.shl (i32.mul (local.get $r) (local.get $ldo)) (i32.const 2))))
        (local.set $i (i32.const 0))
        (block $rowdone
          (loop $el
            (br_if $rowdone (i32.ge_u (local.get $i) (local.get $ff)))
            (local.set $g (v128.load (local.get $gp)))
            (local.set $z (f32x4.abs (local.get $g)))
            (local.set $n (f32x4.add (v128.const f32x4 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23)
              (f32x4.mul (local.get $z) (v128.const f32x4 -0x1.715476p+0 -0x1.715476p+0 -0x1.715476p+0 -0x1.715476p+0))))
            (local.set $s (i32x4.shl (local.get $n) (i32.const 23)))
            (local.set $n (f32x4.sub (local.get $n) (v128.const f32x4 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23)))
            (local.set $t (f32x4.add (local.get $z)
              (f32x4.mul (local.get $n) (v128.const f32x4 0x1.62E400p-1 0x1.62E400p-1 0x1.62E400p-1 0x1.62E400p-1))))
            (local.set $t (f32x4.add (local.get $t)
              (f32x4.mul (local.get $n) (v128.const f32x4 0x1.7F7D1Cp-20 0x1.7F7D1Cp-20 0x1.7F7D1Cp-20 0x1.7F7D1Cp-20))))
            (local.set $p (f32x4.add (v128.const f32x4 0x1.573A1Ap-5 0x1.573A1Ap-5 0x1.573A1Ap-5 0x1.573A1Ap-5)
              (f32x4.mul (local.get $t) (v128.const f32x4 -0x1.0F9F9Cp-7 -0x1.0F9F9Cp-7 -0x1.0F9F9Cp-7 -0x1.0F9F9Cp-7))))
            (local.set $p (f32x4.add (v128.const f32x4 -0x1.555A80p-3 -0x1.555A80p-3 -0x1.555A80p-3 -0x1.555A80p-3)
              (f32x4.mul (local.get $t) (local.get $p))))
            (local.set $p (f32x4.add (v128.const f32x4 0x1.FFFDC6p-2 0x1.FFFDC6p-2 0x1.FFFDC6p-2 0x1.FFFDC6p-2)
              (f32x4.mul (local.get $t) (local.get $p))))
            (local.set $p (f32x4.add (v128.const f32x4 -0x1.FFFFF6p-1 -0x1.FFFFF6p-1 -0x1.FFFFF6p-1 -0x1.FFFFF6p-1)
              (f32x4.mul (local.get $t) (local.get $p))))
            (local.set $t (f32x4.mul (local.get $t) (local.get $s)))
            (local.set $e (f32x4.add (local.get $s) (f32x4.mul (local.get $t) (local.get $p))))
            (local.set $f (f32x4.div (local.get $e)
              (f32x4.add (local.get $e) (v128.const f32x4 1 1 1 1))))
            (local.set $f (v128.andnot (local.get $f)
              (f32x4.gt (local.get $z) (v128.const f32x4 0x1.5D589Ep+6 0x1.5D589Ep+6 0x1.5D589Ep+6 0x1.5D589Ep+6))))
            (local.set $sg (v128.bitselect (local.get $f) (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $f))
              (i32x4.shr_s (local.get $g) (i32.const 31))))
            (v128.store (local.get $op)
              (f32x4.mul (f32x4.mul (local.get $g) (local.get $sg))
                (v128.load (i32.add (local.get $gp) (local.get $upoff)))))
            (local.set $gp (i32.add (local.get $gp) (i32.const 16)))
            (local.set $op (i32.add (local.get $op) (i32.const 16)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $el)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowloop))))

  ;; y[r] = (x[r] * (1 / sqrt(sum(x[r]^2) / d + eps))) * w, the sum sequential from x[r][0]; four
  ;; rows' sums run side by side. d a multiple of 4.
  (func $rmsnorm (export "rmsnorm")
    (param $x i32) (param $ldx i32) (param $y i32) (param $ldy i32) (param $rows i32) (param $w i32) (param $d i32) (param $eps f32)
    (local $r i32) (local $i i32) (local $n i32) (local $fd f32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $end i32) (local $v f32)
    (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32)
    (local.set $ldx (i32.shl (local.get $ldx) (i32.const 2)))
    (local.set $ldy (i32.shl (local.get $ldy) (i32.const 2)))
    (local.set $fd (f32.convert_i32_u (local.get $d)))
    (block $done
      (loop $rowloop
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        ;; n rows in this group (1 to 4); missing ones repeat the group's first row
        (local.set $n (i32.sub (local.get $rows) (local.get $r)))
        (if (i32.gt_u (local.get $n) (i32.const 4)) (then (local.set $n (i32.const 4))))
        (local.set $p0 (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $ldx))))
        (local.set $p1 (select (i32.add (local.get $p0) (local.get $ldx)) (local.get $p0) (i32.gt_u (local.get $n) (i32.const 1))))
        (local.set $p2 (select (i32.add (local.get $p1) (local.get $ldx)) (local.get $p0) (i32.gt_u (local.get $n) (i32.const 2))))
        (local.set $p3 (select (i32.add (local.get $p2) (local.get $ldx)) (local.get $p0) (i32.gt_u (local.get $n) (i32.const 3))))
        (local.set $s0 (f32.const 0)) (local.set $s1 (f32.const 0)) (local.set $s2 (f32.const 0)) (local.set $s3 (f32.const 0))
        (local.set $i (i32.const 0))
        (local.set $end (i32.shl (local.get $d) (i32.const 2)))
        (loop $sum
          (local.set $v (f32.load (i32.add (local.get $p0) (local.get $i))))
          (local.set $s0 (f32.add (local.get $s0) (f32.mul (local.get $v) (local.get $v))))
          (local.set $v (f32.load (i32.add (local.get $p1) (local.get $i))))
          (local.set $s1 (f32.add (local.get $s1) (f32.mul (local.get $v) (local.get $v))))
          (local.set $v (f32.load (i32.add (local.get $p2) (local.get $i))))
          (local.set $s2 (f32.add (local.get $s2) (f32.mul (local.get $v) (local.get $v))))
          (local.set $v (f32.load (i32.add (local.get $p3) (local.get $i))))
          (local.set $s3 (f32.add (local.get $s3) (f32.mul (local.get $v) (local.get $v))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br_if $sum (i32.lt_u (local.get $i) (local.get $end))))
        (call $scalerow (local.get $p0) (i32.add (local.get $y) (i32.mul (local.get $r) (local.get $ldy))) (local.get $w) (local.get $d)
          (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div (local.get $s0) (local.get $fd)) (local.get $eps)))))
        (if (i32.gt_u (local.get $n) (i32.const 1)) (then
          (call $scalerow (local.get $p1) (i32.add (local.get $y) (i32.mul (i32.add (local.get $r) (i32.const 1)) (local.get $ldy))) (local.get $w) (local.get $d)
            (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div (local.get $s1) (local.get $fd)) (local.get $eps)))))))
        (if (i32.gt_u (local.get $n) (i32.const 2)) (then
          (call $scalerow (local.get $p2) (i32.add (local.get $y) (i32.mul (i32.add (local.get $r) (i32.const 2)) (local.get $ldy))) (local.get $w) (local.get $d)
            (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div (local.get $s2) (local.get $fd)) (local.get $eps)))))))
        (if (i32.gt_u (local.get $n) (i32.const 3)) (then
          (call $scalerow (local.get $p3) (i32.add (local.get $y) (i32.mul (i32.add (local.get $r) (i32.const 3)) (local.get $ldy))) (local.get $w) (local.get $d)
            (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div (local.get $s3) (local.get $fd)) (local.get $eps)))))))
        (local.set $r (i32.add (local.get $r) (local.get $n)))
        (br $rowloop))))

  ;; y[i] = (x[i] * inv) * w[i], i < d (a multiple of 4).
  (func $scalerow (param $x i32) (param $y i32) (param $w i32) (param $d i32) (param $inv f32)
    (local $i i32) (local $iv v128)
    (local.set $iv (f32x4.splat (local.get $inv)))
    (local.set $d (i32.shl (local.get $d) (i32.const 2)))
    (loop $el
      (v128.store (i32.add (local.get $y) (local.get $i))
        (f32x4.mul (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $iv))
          (v128.load (i32.add (local.get $w) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $el (i32.lt_u (local.get $i) (local.get $d)))))

  ;; x[r][i] += o[r][i] for r < rows, i < d (a multiple of 4); x is [rows][d].
  (func $add (export "add") (param $x i32) (param $o i32) (param $ldo i32) (param $rows i32) (param $d i32)
    (local $r i32) (local $i i32) (local $xp i32) (local $op i32)
    (local.set $ldo (i32.shl (local.get $ldo) (i32.const 2)))
    (local.set $d (i32.shl (local.get $d) (i32.const 2)))
    (block $done
      (loop $rowloop
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $xp (i32.add (local.get $x) (i32.mul (local.get $r) (local.get $d))))
        (local.set $op (i32.add (local.get $o) (i32.mul (local.get $r) (local.get $ldo))))
        (local.set $i (i32.const 0))
        (loop $el
          (v128.store (i32.add (local.get $xp) (local.get $i))
            (f32x4.add (v128.load (i32.add (local.get $xp) (local.get $i))) (v128.load (i32.add (local.get $op) (local.get $i)))))
          (local.set $i (i32.add (local.get $i) (i32.const 16)))
          (br_if $el (i32.lt_u (local.get $i) (local.get $d))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowloop))))

  ;; HF rotate_half rotary embedding in place on one head of hd floats (hd a multiple of 8):
  ;; x1' = x1 * cos1 + (-x2) * sin1, x2' = x2 * cos2 + x1 * sin2, cos/sin the position's rows.
  (func $rope (param $x i32) (param $cs i32) (param $sn i32) (param $hd i32)
    (local $i i32) (local $half i32) (local $a v128) (local $b v128)
    (local.set $half (i32.shl (local.get $hd) (i32.const 1)))
    (loop $el
      (local.set $a (v128.load (i32.add (local.get $x) (local.get $i))))
      (local.set $b (v128.load (i32.add (local.get $x) (i32.add (local.get $i) (local.get $half)))))
      (v128.store (i32.add (local.get $x) (local.get $i))
        (f32x4.add (f32x4.mul (local.get $a) (v128.load (i32.add (local.get $cs) (local.get $i))))
          (f32x4.mul (f32x4.neg (local.get $b)) (v128.load (i32.add (local.get $sn) (local.get $i))))))
      (v128.store (i32.add (local.get $x) (i32.add (local.get $i) (local.get $half)))
        (f32x4.add (f32x4.mul (local.get $b) (v128.load (i32.add (local.get $cs) (i32.add (local.get $i) (local.get $half)))))
          (f32x4.mul (local.get $a) (v128.load (i32.add (local.get $sn) (i32.add (local.get $i) (local.get $half)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $el (i32.lt_u (local.get $i) (local.get $half)))))

  ;; Softmax of one row of scaled scores in place, over the real keys p0..qt, as XNNPACK computes
  ;; it for the reference's row of tk keys: the max (exact in any order; lanes of the end groups
  ;; outside p0..qt are set to -inf for it), exp(score - max) with lane sums by key index mod 4 up
  ;; to the last full group of the row (masked keys add exact zeros), the row's tail added in
  ;; order, then a multiply by 1/sum. Entries outside p0..qt are left meaningless.
  (func $softmax (param $sc i32) (param $p0 i32) (param $qt i32) (param $tk i32)
    (local $j i32) (local $g0 i32) (local $n4 i32) (local $kp i32)
    (local $mx f32) (local $sum f32) (local $inv f32)
    (local $mv v128) (local $acc v128) (local $x v128) (local $e v128) (local $idx v128) (local $lo v128) (local $hi v128)
    (local $en v128) (local $es v128) (local $et v128) (local $ep v128)
    (local.set $g0 (i32.and (local.get $p0) (i32.const -4)))
    (local.set $j (local.get $g0))
    (block $lodone
      (loop $lo
        (br_if $lodone (i32.ge_s (local.get $j) (local.get $p0)))
        (f32.store (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))) (f32.const -inf))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $lo)))
    (local.set $j (i32.add (local.get $qt) (i32.const 1)))
    (block $hidone
      (loop $hi
        (br_if $hidone (i32.eqz (i32.and (local.get $j) (i32.const 3))))
        (f32.store (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))) (f32.const -inf))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $hi)))
    (local.set $mv (v128.load (i32.add (local.get $sc) (i32.shl (local.get $g0) (i32.const 2)))))
    (local.set $j (i32.add (local.get $g0) (i32.const 4)))
    (block $mdone
      (loop $mloop
        (br_if $mdone (i32.gt_s (local.get $j) (local.get $qt)))
        (local.set $mv (f32x4.max (local.get $mv) (v128.load (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $mloop)))
    (local.set $mx (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mv)) (f32x4.extract_lane 1 (local.get $mv)))
      (f32.max (f32x4.extract_lane 2 (local.get $mv)) (f32x4.extract_lane 3 (local.get $mv)))))
    (local.set $mv (f32x4.splat (local.get $mx)))
    (local.set $lo (i32x4.splat (local.get $p0)))
    (local.set $hi (i32x4.splat (local.get $qt)))
    (local.set $n4 (i32.and (local.get $tk) (i32.const -4)))
    (local.set $acc (v128.const i32x4 0 0 0 0))
    (local.set $j (local.get $g0))
    (block $edone
      (loop $eloop
        (br_if $edone (i32.gt_s (local.get $j) (local.get $qt)))
        (br_if $edone (i32.ge_s (local.get $j) (local.get $n4)))
        (local.set $kp (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $x (f32x4.sub (v128.load (local.get $kp)) (local.get $mv)))
        ;; $expminus of $x, inline
        (local.set $en (f32x4.add (v128.const f32x4 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23)
          (f32x4.mul (local.get $x) (v128.const f32x4 0x1.715476p+0 0x1.715476p+0 0x1.715476p+0 0x1.715476p+0))))
        (local.set $es (i32x4.shl (local.get $en) (i32.const 23)))
        (local.set $en (f32x4.sub (local.get $en) (v128.const f32x4 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23 0x1.8000FEp23)))
        (local.set $et (f32x4.add (local.get $x)
          (f32x4.mul (local.get $en) (v128.const f32x4 -0x1.62E400p-1 -0x1.62E400p-1 -0x1.62E400p-1 -0x1.62E400p-1))))
        (local.set $et (f32x4.add (local.get $et)
          (f32x4.mul (local.get $en) (v128.const f32x4 -0x1.7F7D1Cp-20 -0x1.7F7D1Cp-20 -0x1.7F7D1Cp-20 -0x1.7F7D1Cp-20))))
        (local.set $ep (f32x4.add (v128.const f32x4 0x1.573A1Ap-5 0x1.573A1Ap-5 0x1.573A1Ap-5 0x1.573A1Ap-5)
          (f32x4.mul (v128.const f32x4 0x1.0F9F9Cp-7 0x1.0F9F9Cp-7 0x1.0F9F9Cp-7 0x1.0F9F9Cp-7) (local.get $et))))
        (local.set $ep (f32x4.add (v128.const f32x4 0x1.555A80p-3 0x1.555A80p-3 0x1.555A80p-3 0x1.555A80p-3)
          (f32x4.mul (local.get $ep) (local.get $et))))
        (local.set $ep (f32x4.add (v128.const f32x4 0x1.FFFDC6p-2 0x1.FFFDC6p-2 0x1.FFFDC6p-2 0x1.FFFDC6p-2)
          (f32x4.mul (local.get $ep) (local.get $et))))
        (local.set $ep (f32x4.add (v128.const f32x4 0x1.FFFFF6p-1 0x1.FFFFF6p-1 0x1.FFFFF6p-1 0x1.FFFFF6p-1)
          (f32x4.mul (local.get $ep) (local.get $et))))
        (local.set $et (f32x4.mul (local.get $et) (local.get $es)))
        (local.set $e (v128.andnot (f32x4.add (local.get $es) (f32x4.mul (local.get $et) (local.get $ep)))
          (f32x4.lt (local.get $x) (v128.const f32x4 -0x1.5D589Ep6 -0x1.5D589Ep6 -0x1.5D589Ep6 -0x1.5D589Ep6))))
        (local.set $idx (i32x4.add (i32x4.splat (local.get $j)) (v128.const i32x4 0 1 2 3)))
        (local.set $e (v128.and (local.get $e)
          (v128.and (i32x4.ge_s (local.get $idx) (local.get $lo)) (i32x4.le_s (local.get $idx) (local.get $hi)))))
        (v128.store (local.get $kp) (local.get $e))
        (local.set $acc (f32x4.add (local.get $acc) (local.get $e)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $eloop)))
    (local.set $acc (f32x4.add (local.get $acc)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $acc) (local.get $acc))))
    (local.set $sum (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc))))
    (local.set $j (local.get $n4))
    (if (i32.lt_s (local.get $j) (local.get $p0)) (then (local.set $j (local.get $p0))))
    (block $tdone
      (loop $tloop
        (br_if $tdone (i32.gt_s (local.get $j) (local.get $qt)))
        (local.set $kp (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $e (call $expminus (f32x4.sub (v128.load32_splat (local.get $kp)) (local.get $mv))))
        (f32.store (local.get $kp) (f32x4.extract_lane 0 (local.get $e)))
        (local.set $sum (f32.add (local.get $sum) (f32x4.extract_lane 0 (local.get $e))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tloop)))
    (local.set $inv (f32.div (f32.const 1) (local.get $sum)))
    (local.set $x (f32x4.splat (local.get $inv)))
    (local.set $j (local.get $g0))
    (block $pdone
      (loop $ploop
        (br_if $pdone (i32.gt_s (local.get $j) (local.get $qt)))
        (local.set $kp (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
        (v128.store (local.get $kp) (f32x4.mul (v128.load (local.get $kp)) (local.get $x)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $ploop))))

  ;; Two queries (q0, q1: hd floats each, rotary applied) of the same kv head. kt: keys transposed,
  ;; element (d, j) at kt + 4 * (d * ldk + j); v: element (j, d) at v + 4 * (j * hd + d). Real keys
  ;; are padded positions p0..qt; tk is the length of the reference's softmax row. Scores: the
  ;; reference's q.k sums each key over d in order; here 16 keys of both queries per pass, so ldk
  ;; is a multiple of 16 and more than qt. p.v: per 48-key block, each output summed over the
  ;; block's keys in order, then added to the output; here 16 dims of both queries per pass.
  ;; sc: scratch of 2 * ldk + hd floats. Writes hd floats to out0 and to out1 (q1 = q0, out1 = out0
  ;; is how one query is asked). hd a multiple of 4.
  (func $attend (export "attend")
    (param $q0 i32) (param $q1 i32) (param $kt i32) (param $ldk i32) (param $v i32) (param $sc i32)
    (param $out0 i32) (param $out1 i32) (param $p0 i32) (param $qt i32) (param $tk i32) (param $scale f32) (param $hd i32)
    (local $j i32) (local $d i32) (local $kp i32) (local $qp i32) (local $qend i32) (local $dq i32) (local $hb i32)
    (local $b i32) (local $jend i32) (local $pp i32) (local $pend i32) (local $vp i32) (local $o0 i32) (local $o1 i32) (local $b0 i32)
    (local $x v128) (local $y v128) (local $sv v128)
    (local $k0 v128) (local $k1 v128) (local $k2 v128) (local $k3 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local.set $ldk (i32.shl (local.get $ldk) (i32.const 2)))
    (local.set $hb (i32.shl (local.get $hd) (i32.const 2)))
    ;; one query asked twice: its second copy goes to scratch (the sums below add into out1)
    (if (i32.eq (local.get $out0) (local.get $out1))
      (then (local.set $out1 (i32.add (local.get $sc) (i32.shl (local.get $ldk) (i32.const 1))))))
    (local.set $sv (f32x4.splat (local.get $scale)))
    (local.set $qend (i32.add (local.get $q0) (local.get $hb)))
    (local.set $dq (i32.sub (local.get $q1) (local.get $q0)))
    (local.set $j (i32.and (local.get $p0) (i32.const -16)))
    (block $sdone
      (loop $sloop
        (br_if $sdone (i32.gt_s (local.get $j) (local.get $qt)))
        (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $c0 (v128.const i32x4 0 0 0 0)) (local.set $c1 (v128.const i32x4 0 0 0 0))
        (local.set $c2 (v128.const i32x4 0 0 0 0)) (local.set $c3 (v128.const i32x4 0 0 0 0))
        (local.set $kp (i32.add (local.get $kt) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $qp (local.get $q0))
        (loop $dloop
          (local.set $x (v128.load32_splat (local.get $qp)))
          (local.set $y (v128.load32_splat (i32.add (local.get $qp) (local.get $dq))))
          (local.set $k0 (v128.load offset=0 (local.get $kp)))
          (local.set $k1 (v128.load offset=16 (local.get $kp)))
          (local.set $k2 (v128.load offset=32 (local.get $kp)))
          (local.set $k3 (v128.load offset=48 (local.get $kp)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $x) (local.get $k0))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $x) (local.get $k1))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $x) (local.get $k2))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $x) (local.get $k3))))
          (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $y) (local.get $k0))))
          (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $y) (local.get $k1))))
          (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (local.get $y) (local.get $k2))))
          (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (local.get $y) (local.get $k3))))
          (local.set $kp (i32.add (local.get $kp) (local.get $ldk)))
          (local.set $qp (i32.add (local.get $qp) (i32.const 4)))
          (br_if $dloop (i32.ne (local.get $qp) (local.get $qend))))
        (local.set $kp (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
        (v128.store offset=0 (local.get $kp) (f32x4.mul (local.get $a0) (local.get $sv)))
        (v128.store offset=16 (local.get $kp) (f32x4.mul (local.get $a1) (local.get $sv)))
        (v128.store offset=32 (local.get $kp) (f32x4.mul (local.get $a2) (local.get $sv)))
        (v128.store offset=48 (local.get $kp) (f32x4.mul (local.get $a3) (local.get $sv)))
        (local.set $kp (i32.add (local.get $kp) (local.get $ldk)))
        (v128.store offset=0 (local.get $kp) (f32x4.mul (local.get $c0) (local.get $sv)))
        (v128.store offset=16 (local.get $kp) (f32x4.mul (local.get $c1) (local.get $sv)))
        (v128.store offset=32 (local.get $kp) (f32x4.mul (local.get $c2) (local.get $sv)))
        (v128.store offset=48 (local.get $kp) (f32x4.mul (local.get $c3) (local.get $sv)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $sloop)))
    (call $softmax (local.get $sc) (local.get $p0) (local.get $qt) (local.get $tk))
    (call $softmax (i32.add (local.get $sc) (local.get $ldk)) (local.get $p0) (local.get $qt) (local.get $tk))
    (local.set $b0 (i32.mul (i32.div_u (local.get $p0) (i32.const 48)) (i32.const 48)))
    (local.set $d (i32.const 0))
    (block $o16done
      (loop $o16
        (br_if $o16done (i32.gt_u (i32.add (local.get $d) (i32.const 16)) (local.get $hd)))
        (local.set $o0 (i32.add (local.get $out0) (i32.shl (local.get $d) (i32.const 2))))
        (local.set $o1 (i32.add (local.get $out1) (i32.shl (local.get $d) (i32.const 2))))
        (v128.store offset=0 (local.get $o0) (v128.const i32x4 0 0 0 0)) (v128.store offset=16 (local.get $o0) (v128.const i32x4 0 0 0 0))
        (v128.store offset=32 (local.get $o0) (v128.const i32x4 0 0 0 0)) (v128.store offset=48 (local.get $o0) (v128.const i32x4 0 0 0 0))
        (v128.store offset=0 (local.get $o1) (v128.const i32x4 0 0 0 0)) (v128.store offset=16 (local.get $o1) (v128.const i32x4 0 0 0 0))
        (v128.store offset=32 (local.get $o1) (v128.const i32x4 0 0 0 0)) (v128.store offset=48 (local.get $o1) (v128.const i32x4 0 0 0 0))
        (local.set $b (local.get $b0))
        (block $b16done
          (loop $b16
            (br_if $b16done (i32.gt_s (local.get $b) (local.get $qt)))
            (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
            (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
            (local.set $c0 (v128.const i32x4 0 0 0 0)) (local.set $c1 (v128.const i32x4 0 0 0 0))
            (local.set $c2 (v128.const i32x4 0 0 0 0)) (local.set $c3 (v128.const i32x4 0 0 0 0))
            (local.set $j (local.get $b))
            (if (i32.lt_s (local.get $j) (local.get $p0)) (then (local.set $j (local.get $p0))))
            (local.set $jend (i32.add (local.get $b) (i32.const 47)))
            (if (i32.gt_s (local.get $jend) (local.get $qt)) (then (local.set $jend (local.get $qt))))
            (local.set $pp (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $pend (i32.add (local.get $sc) (i32.shl (i32.add (local.get $jend) (i32.const 1)) (i32.const 2))))
            (local.set $vp (i32.add (local.get $v)
              (i32.shl (i32.add (i32.mul (local.get $j) (local.get $hd)) (local.get $d)) (i32.const 2))))
            (loop $j16
              (local.set $x (v128.load32_splat (local.get $pp)))
              (local.set $y (v128.load32_splat (i32.add (local.get $pp) (local.get $ldk))))
              (local.set $k0 (v128.load offset=0 (local.get $vp)))
              (local.set $k1 (v128.load offset=16 (local.get $vp)))
              (local.set $k2 (v128.load offset=32 (local.get $vp)))
              (local.set $k3 (v128.load offset=48 (local.get $vp)))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $x) (local.get $k0))))
              (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $x) (local.get $k1))))
              (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $x) (local.get $k2))))
              (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $x) (local.get $k3))))
              (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $y) (local.get $k0))))
              (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $y) (local.get $k1))))
              (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (local.get $y) (local.get $k2))))
              (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (local.get $y) (local.get $k3))))
              (local.set $vp (i32.add (local.get $vp) (local.get $hb)))
              (local.set $pp (i32.add (local.get $pp) (i32.const 4)))
              (br_if $j16 (i32.ne (local.get $pp) (local.get $pend))))
            (v128.store offset=0 (local.get $o0) (f32x4.add (v128.load offset=0 (local.get $o0)) (local.get $a0)))
            (v128.store offset=16 (local.get $o0) (f32x4.add (v128.load offset=16 (local.get $o0)) (local.get $a1)))
            (v128.store offset=32 (local.get $o0) (f32x4.add (v128.load offset=32 (local.get $o0)) (local.get $a2)))
            (v128.store offset=48 (local.get $o0) (f32x4.add (v128.load offset=48 (local.get $o0)) (local.get $a3)))
            (v128.store offset=0 (local.get $o1) (f32x4.add (v128.load offset=0 (local.get $o1)) (local.get $c0)))
            (v128.store offset=16 (local.get $o1) (f32x4.add (v128.load offset=16 (local.get $o1)) (local.get $c1)))
            (v128.store offset=32 (local.get $o1) (f32x4.add (v128.load offset=32 (local.get $o1)) (local.get $c2)))
            (v128.store offset=48 (local.get $o1) (f32x4.add (v128.load offset=48 (local.get $o1)) (local.get $c3)))
            (local.set $b (i32.add (local.get $b) (i32.const 48)))
            (br $b16)))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $o16)))
    ;; the remaining dims, four at a time
    (block $o4done
      (loop $o4
        (br_if $o4done (i32.ge_u (local.get $d) (local.get $hd)))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $c1 (v128.const i32x4 0 0 0 0))
        (local.set $b (local.get $b0))
        (block $b4done
          (loop $b4
            (br_if $b4done (i32.gt_s (local.get $b) (local.get $qt)))
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $c0 (v128.const i32x4 0 0 0 0))
            (local.set $j (local.get $b))
            (if (i32.lt_s (local.get $j) (local.get $p0)) (then (local.set $j (local.get $p0))))
            (local.set $jend (i32.add (local.get $b) (i32.const 47)))
            (if (i32.gt_s (local.get $jend) (local.get $qt)) (then (local.set $jend (local.get $qt))))
            (local.set $pp (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
            (local.set $pend (i32.add (local.get $sc) (i32.shl (i32.add (local.get $jend) (i32.const 1)) (i32.const 2))))
            (local.set $vp (i32.add (local.get $v)
              (i32.shl (i32.add (i32.mul (local.get $j) (local.get $hd)) (local.get $d)) (i32.const 2))))
            (loop $j4
              (local.set $k0 (v128.load (local.get $vp)))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load32_splat (local.get $pp)) (local.get $k0))))
              (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (v128.load32_splat (i32.add (local.get $pp) (local.get $ldk))) (local.get $k0))))
              (local.set $vp (i32.add (local.get $vp) (local.get $hb)))
              (local.set $pp (i32.add (local.get $pp) (i32.const 4)))
              (br_if $j4 (i32.ne (local.get $pp) (local.get $pend))))
            (local.set $a1 (f32x4.add (local.get $a1) (local.get $a0)))
            (local.set $c1 (f32x4.add (local.get $c1) (local.get $c0)))
            (local.set $b (i32.add (local.get $b) (i32.const 48)))
            (br $b4)))
        (v128.store (i32.add (local.get $out0) (i32.shl (local.get $d) (i32.const 2))) (local.get $a1))
        (v128.store (i32.add (local.get $out1) (i32.shl (local.get $d) (i32.const 2))) (local.get $c1))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $o4))))

  ;; The attention of one layer for M fed tokens. qkv: [M][ldq] rows of q (H heads), k and v (KVH
  ;; heads each), hd floats per head. tab: 8 i32 per token: [kv, cap, pad, t, pos, tk, lstride, 0]
  ;; where kv is the byte offset of the token's row cache for layer 0 (keys transposed
  ;; [KVH][hd][cap], then values [KVH][cap][hd]), lstride the bytes from one layer's cache to the
  ;; next, t the token's padded position, pos its rotary position, tk its reference softmax length.
  ;; First rotary on q and k and the token's k and v written to its cache, for every token (a
  ;; token may attend to those fed before it in the same call), then attention per token and head,
  ;; written to out [M][ldo].
  (func $attention (export "attention")
    (param $qkv i32) (param $ldq i32) (param $tab i32) (param $M i32) (param $layer i32)
    (param $H i32) (param $KVH i32) (param $hd i32) (param $cos i32) (param $sin i32)
    (param $sc i32) (param $out i32) (param $ldo i32) (param $scale f32)
    (local $r i32) (local $h i32) (local $g i32) (local $e i32) (local $tp i32) (local $row i32)
    (local $kt i32) (local $vv i32) (local $cap i32) (local $t i32) (local $hb i32) (local $ko i32) (local $vo i32)
    (local $cs i32) (local $sn i32) (local $rep i32) (local $kvb i32) (local $h1 i32) (local $hend i32) (local $orow i32)
    (local.set $hb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $ldq (i32.shl (local.get $ldq) (i32.const 2)))
    (local.set $ldo (i32.shl (local.get $ldo) (i32.const 2)))
    (local.set $rep (i32.div_u (local.get $H) (local.get $KVH)))
    (local.set $ko (i32.mul (local.get $H) (local.get $hb)))
    (local.set $vo (i32.mul (i32.add (local.get $H) (local.get $KVH)) (local.get $hb)))
    (local.set $tp (local.get $tab))
    (block $wdone
      (loop $wloop
        (br_if $wdone (i32.ge_u (local.get $r) (local.get $M)))
        (local.set $row (i32.add (local.get $qkv) (i32.mul (local.get $r) (local.get $ldq))))
        (local.set $cap (i32.load offset=4 (local.get $tp)))
        (local.set $t (i32.load offset=12 (local.get $tp)))
        (local.set $cs (i32.add (local.get $cos) (i32.mul (i32.load offset=16 (local.get $tp)) (local.get $hb))))
        (local.set $sn (i32.add (local.get $sin) (i32.mul (i32.load offset=16 (local.get $tp)) (local.get $hb))))
        (local.set $h (i32.const 0))
        (loop $qh
          (call $rope (i32.add (local.get $row) (i32.mul (local.get $h) (local.get $hb))) (local.get $cs) (local.get $sn) (local.get $hd))
          (local.set $h (i32.add (local.get $h) (i32.const 1)))
          (br_if $qh (i32.lt_u (local.get $h) (local.get $H))))
        (local.set $kt (i32.add (i32.load (local.get $tp)) (i32.mul (local.get $layer) (i32.load offset=24 (local.get $tp)))))
        (local.set $kvb (i32.mul (local.get $cap) (local.get $hb)))
        (local.set $vv (i32.add (local.get $kt) (i32.mul (local.get $KVH) (local.get $kvb))))
        (local.set $g (i32.const 0))
        (loop $kh
          (call $rope (i32.add (local.get $row) (i32.add (local.get $ko) (i32.mul (local.get $g) (local.get $hb)))) (local.get $cs) (local.get $sn) (local.get $hd))
          (local.set $e (i32.const 0))
          (loop $kw
            (f32.store
              (i32.add (i32.add (local.get $kt) (i32.mul (local.get $g) (local.get $kvb)))
                (i32.shl (i32.add (i32.mul (local.get $e) (local.get $cap)) (local.get $t)) (i32.const 2)))
              (f32.load (i32.add (local.get $row) (i32.add (local.get $ko) (i32.shl (i32.add (i32.mul (local.get $g) (local.get $hd)) (local.get $e)) (i32.const 2))))))
            (local.set $e (i32.add (local.get $e) (i32.const 1)))
            (br_if $kw (i32.lt_u (local.get $e) (local.get $hd))))
          (local.set $e (i32.const 0))
          (loop $vw
            (v128.store
              (i32.add (i32.add (local.get $vv) (i32.mul (local.get $g) (local.get $kvb)))
                (i32.add (i32.mul (local.get $t) (local.get $hb)) (local.get $e)))
              (v128.load (i32.add (local.get $row) (i32.add (i32.add (local.get $vo) (i32.mul (local.get $g) (local.get $hb))) (local.get $e)))))
            (local.set $e (i32.add (local.get $e) (i32.const 16)))
            (br_if $vw (i32.lt_u (local.get $e) (local.get $hb))))
          (local.set $g (i32.add (local.get $g) (i32.const 1)))
          (br_if $kh (i32.lt_u (local.get $g) (local.get $KVH))))
        (local.set $tp (i32.add (local.get $tp) (i32.const 32)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $wloop)))
    (local.set $r (i32.const 0))
    (local.set $tp (local.get $tab))
    (block $adone
      (loop $aloop
        (br_if $adone (i32.ge_u (local.get $r) (local.get $M)))
        (local.set $row (i32.add (local.get $qkv) (i32.mul (local.get $r) (local.get $ldq))))
        (local.set $cap (i32.load offset=4 (local.get $tp)))
        (local.set $kt (i32.add (i32.load (local.get $tp)) (i32.mul (local.get $layer) (i32.load offset=24 (local.get $tp)))))
        (local.set $kvb (i32.mul (local.get $cap) (local.get $hb)))
        (local.set $vv (i32.add (local.get $kt) (i32.mul (local.get $KVH) (local.get $kvb))))
        (local.set $orow (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $ldo))))
        ;; query heads in pairs within each kv group (an odd one out is paired with itself)
        (local.set $g (i32.const 0))
        (loop $ag
          (local.set $h (i32.mul (local.get $g) (local.get $rep)))
          (local.set $hend (i32.add (local.get $h) (local.get $rep)))
          (loop $ah
            (local.set $h1 (i32.add (local.get $h) (i32.const 1)))
            (if (i32.ge_u (local.get $h1) (local.get $hend)) (then (local.set $h1 (local.get $h))))
            (call $attend
              (i32.add (local.get $row) (i32.mul (local.get $h) (local.get $hb)))
              (i32.add (local.get $row) (i32.mul (local.get $h1) (local.get $hb)))
              (i32.add (local.get $kt) (i32.mul (local.get $g) (local.get $kvb))) (local.get $cap)
              (i32.add (local.get $vv) (i32.mul (local.get $g) (local.get $kvb)))
              (local.get $sc)
              (i32.add (local.get $orow) (i32.mul (local.get $h) (local.get $hb)))
              (i32.add (local.get $orow) (i32.mul (local.get $h1) (local.get $hb)))
              (i32.load offset=8 (local.get $tp)) (i32.load offset=12 (local.get $tp)) (i32.load offset=20 (local.get $tp))
              (local.get $scale) (local.get $hd))
            (local.set $h (i32.add (local.get $h) (i32.const 2)))
            (br_if $ah (i32.lt_u (local.get $h) (local.get $hend))))
          (local.set $g (i32.add (local.get $g) (i32.const 1)))
          (br_if $ag (i32.lt_u (local.get $g) (local.get $KVH))))
        (local.set $tp (i32.add (local.get $tp) (i32.const 32)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $aloop))))
)
