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
;; Key indices are padded positions: the reference left-pads prompts in a batch, and both the
;; softmax lane a key falls in and the 48-key block it is summed in depend on that position.
;; Masked keys contribute exact zeros there, so they are skipped here.
;; All pointers are byte offsets into the exported memory; lengths and strides count floats.
(module
  (memory (export "memory") 1)

  ;; out[m][n] = sum over k ascending of a[m][k] * w[k][n]; w is [K][ldw] (in, out), N a multiple of 8.
  (func $fc (export "fc")
    (param $a i32) (param $lda i32) (param $w i32) (param $ldw i32) (param $out i32) (param $ldo i32)
    (param $M i32) (param $K i32) (param $N i32)
    (local $m i32) (local $n i32) (local $k i32) (local $wp i32) (local $o i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32)
    (local $b0 v128) (local $b1 v128) (local $x v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $lda (i32.shl (local.get $lda) (i32.const 2)))
    (local.set $ldw (i32.shl (local.get $ldw) (i32.const 2)))
    (local.set $ldo (i32.shl (local.get $ldo) (i32.const 2)))
    ;; four rows at a time
    (block $rows4done
      (loop $rows4
        (br_if $rows4done (i32.gt_u (i32.add (local.get $m) (i32.const 4)) (local.get $M)))
        (local.set $n (i32.const 0))
        (block $cols4done
          (loop $cols4
            (br_if $cols4done (i32.ge_u (local.get $n) (local.get $N)))
            (local.set $c00 (v128.const i32x4 0 0 0 0)) (local.set $c01 (v128.const i32x4 0 0 0 0))
            (local.set $c10 (v128.const i32x4 0 0 0 0)) (local.set $c11 (v128.const i32x4 0 0 0 0))
            (local.set $c20 (v128.const i32x4 0 0 0 0)) (local.set $c21 (v128.const i32x4 0 0 0 0))
            (local.set $c30 (v128.const i32x4 0 0 0 0)) (local.set $c31 (v128.const i32x4 0 0 0 0))
            (local.set $a0 (i32.add (local.get $a) (i32.mul (local.get $m) (local.get $lda))))
            (local.set $a1 (i32.add (local.get $a0) (local.get $lda)))
            (local.set $a2 (i32.add (local.get $a1) (local.get $lda)))
            (local.set $a3 (i32.add (local.get $a2) (local.get $lda)))
            (local.set $wp (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 2))))
            (local.set $k (local.get $K))
            (loop $kloop
              (local.set $b0 (v128.load (local.get $wp)))
              (local.set $b1 (v128.load offset=16 (local.get $wp)))
              (local.set $x (v128.load32_splat (local.get $a0)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (local.get $b1))))
              (local.set $x (v128.load32_splat (local.get $a1)))
              (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $x) (local.get $b0))))
              (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $x) (local.get $b1))))
              (local.set $x (v128.load32_splat (local.get $a2)))
              (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $x) (local.get $b0))))
              (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $x) (local.get $b1))))
              (local.set $x (v128.load32_splat (local.get $a3)))
              (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $x) (local.get $b0))))
              (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $x) (local.get $b1))))
              (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
              (local.set $a1 (i32.add (local.get $a1) (i32.const 4)))
              (local.set $a2 (i32.add (local.get $a2) (i32.const 4)))
              (local.set $a3 (i32.add (local.get $a3) (i32.const 4)))
              (local.set $wp (i32.add (local.get $wp) (local.get $ldw)))
              (local.set $k (i32.sub (local.get $k) (i32.const 1)))
              (br_if $kloop (local.get $k)))
            (local.set $o (i32.add (local.get $out)
              (i32.add (i32.mul (local.get $m) (local.get $ldo)) (i32.shl (local.get $n) (i32.const 2)))))
            (v128.store (local.get $o) (local.get $c00)) (v128.store offset=16 (local.get $o) (local.get $c01))
            (local.set $o (i32.add (local.get $o) (local.get $ldo)))
            (v128.store (local.get $o) (local.get $c10)) (v128.store offset=16 (local.get $o) (local.get $c11))
            (local.set $o (i32.add (local.get $o) (local.get $ldo)))
            (v128.store (local.get $o) (local.get $c20)) (v128.store offset=16 (local.get $o) (local.get $c21))
            (local.set $o (i32.add (local.get $o) (local.get $ldo)))
            (v128.store (local.get $o) (local.get $c30)) (v128.store offset=16 (local.get $o) (local.get $c31))
            (local.set $n (i32.add (local.get $n) (i32.const 8)))
            (br $cols4)))
        (local.set $m (i32.add (local.get $m) (i32.const 4)))
        (br $rows4)))
    ;; the remaining rows one at a time
    (block $rows1done
      (loop $rows1
        (br_if $rows1done (i32.ge_u (local.get $m) (local.get $M)))
        (local.set $n (i32.const 0))
        (block $cols1done
          (loop $cols1
            (br_if $cols1done (i32.ge_u (local.get $n) (local.get $N)))
            (local.set $c00 (v128.const i32x4 0 0 0 0)) (local.set $c01 (v128.const i32x4 0 0 0 0))
            (local.set $a0 (i32.add (local.get $a) (i32.mul (local.get $m) (local.get $lda))))
            (local.set $wp (i32.add (local.get $w) (i32.shl (local.get $n) (i32.const 2))))
            (local.set $k (local.get $K))
            (loop $kloop1
              (local.set $x (v128.load32_splat (local.get $a0)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (v128.load (local.get $wp)))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $x) (v128.load offset=16 (local.get $wp)))))
              (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
              (local.set $wp (i32.add (local.get $wp) (local.get $ldw)))
              (local.set $k (i32.sub (local.get $k) (i32.const 1)))
              (br_if $kloop1 (local.get $k)))
            (local.set $o (i32.add (local.get $out)
              (i32.add (i32.mul (local.get $m) (local.get $ldo)) (i32.shl (local.get $n) (i32.const 2)))))
            (v128.store (local.get $o) (local.get $c00)) (v128.store offset=16 (local.get $o) (local.get $c01))
            (local.set $n (i32.add (local.get $n) (i32.const 8)))
            (br $cols1)))
        (local.set $m (i32.add (local.get $m) (i32.const 1)))
        (br $rows1))))

  ;; XNNPACK f32 sigmoid, wasmsimd rr2_p5_div, on four lanes.
  (func $sigmoid (param $x v128) (result v128)
    (local $z v128) (local $n v128) (local $s v128) (local $t v128) (local $p v128) (local $e v128) (local $f v128)
    (local.set $z (f32x4.abs (local.get $x)))
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
    (v128.bitselect (local.get $f) (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $f))
      (i32x4.shr_s (local.get $x) (i32.const 31))))

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

  ;; out[r][i] = (g * sigmoid(g)) * u for g = gu[r][i], u = gu[r][ff + i]; ff a multiple of 4.
  (func $swiglu (export "swiglu")
    (param $gu i32) (param $ldgu i32) (param $out i32) (param $ldo i32) (param $rows i32) (param $ff i32)
    (local $r i32) (local $i i32) (local $g v128) (local $gp i32) (local $op i32) (local $upoff i32)
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
            (v128.store (local.get $op)
              (f32x4.mul (f32x4.mul (local.get $g) (call $sigmoid (local.get $g)))
                (v128.load (i32.add (local.get $gp) (local.get $upoff)))))
            (local.set $gp (i32.add (local.get $gp) (i32.const 16)))
            (local.set $op (i32.add (local.get $op) (i32.const 16)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $el)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowloop))))

  ;; One query against one kv head. q: hd floats (rotary applied). kt: keys transposed, element
  ;; (d, j) at kt + 4 * (d * ldk + j). v: element (j, d) at v + 4 * (j * hd + d). Real keys are
  ;; padded positions p0..qt; tk is the length of the reference's softmax row. sc: scratch of at
  ;; least qt + 4 floats. Writes hd floats to out. hd a multiple of 4.
  (func $attend (export "attend")
    (param $q i32) (param $kt i32) (param $ldk i32) (param $v i32) (param $sc i32) (param $out i32)
    (param $p0 i32) (param $qt i32) (param $tk i32) (param $scale f32) (param $hd i32)
    (local $j i32) (local $d i32) (local $g0 i32) (local $n4 i32) (local $acc v128) (local $kp i32)
    (local $mx f32) (local $sum f32) (local $e v128) (local $x v128) (local $idx v128) (local $inv f32)
    (local $b i32) (local $bend i32) (local $jend i32) (local $o v128) (local $bs v128) (local $vp i32)
    (local.set $ldk (i32.shl (local.get $ldk) (i32.const 2)))
    (local.set $g0 (i32.and (local.get $p0) (i32.const -4)))
    ;; scores = (q . k) * scale, four keys per vector, each lane summed over d in order
    (local.set $j (local.get $g0))
    (block $sdone
      (loop $sloop
        (br_if $sdone (i32.gt_s (local.get $j) (local.get $qt)))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $kp (i32.add (local.get $kt) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $d (i32.const 0))
        (block $ddone
          (loop $dloop
            (br_if $ddone (i32.ge_u (local.get $d) (local.get $hd)))
            (local.set $acc (f32x4.add (local.get $acc)
              (f32x4.mul (v128.load32_splat (i32.add (local.get $q) (i32.shl (local.get $d) (i32.const 2))))
                (v128.load (local.get $kp)))))
            (local.set $kp (i32.add (local.get $kp) (local.get $ldk)))
            (local.set $d (i32.add (local.get $d) (i32.const 1)))
            (br $dloop)))
        (v128.store (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2)))
          (f32x4.mul (local.get $acc) (f32x4.splat (local.get $scale))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $sloop)))
    ;; max over the real keys
    (local.set $mx (f32.load (i32.add (local.get $sc) (i32.shl (local.get $p0) (i32.const 2)))))
    (local.set $j (i32.add (local.get $p0) (i32.const 1)))
    (block $mdone
      (loop $mloop
        (br_if $mdone (i32.gt_s (local.get $j) (local.get $qt)))
        (local.set $mx (f32.max (local.get $mx) (f32.load (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $mloop)))
    ;; exp(score - max): lanes by key index mod 4 up to the last full group of the row, then the tail in order
    (local.set $n4 (i32.and (local.get $tk) (i32.const -4)))
    (local.set $acc (v128.const i32x4 0 0 0 0))
    (local.set $j (local.get $g0))
    (block $edone
      (loop $eloop
        (br_if $edone (i32.gt_s (local.get $j) (local.get $qt)))
        (br_if $edone (i32.ge_s (local.get $j) (local.get $n4)))
        (local.set $x (f32x4.sub (v128.load (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
          (f32x4.splat (local.get $mx))))
        (local.set $idx (i32x4.add (i32x4.splat (local.get $j)) (v128.const i32x4 0 1 2 3)))
        (local.set $e (v128.and (call $expminus (local.get $x))
          (v128.and (i32x4.ge_s (local.get $idx) (i32x4.splat (local.get $p0)))
            (i32x4.le_s (local.get $idx) (i32x4.splat (local.get $qt))))))
        (v128.store (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))) (local.get $e))
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
        (local.set $e (call $expminus (f32x4.sub
          (v128.load32_splat (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
          (f32x4.splat (local.get $mx)))))
        (f32.store (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))) (f32x4.extract_lane 0 (local.get $e)))
        (local.set $sum (f32.add (local.get $sum) (f32x4.extract_lane 0 (local.get $e))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tloop)))
    ;; probabilities
    (local.set $inv (f32.div (f32.const 1) (local.get $sum)))
    (local.set $j (local.get $p0))
    (block $pdone
      (loop $ploop
        (br_if $pdone (i32.gt_s (local.get $j) (local.get $qt)))
        (local.set $kp (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
        (f32.store (local.get $kp) (f32.mul (f32.load (local.get $kp)) (local.get $inv)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $ploop)))
    ;; out = sum over blocks of 48 keys of (the block's sum over its keys in order), four dims per vector
    (local.set $d (i32.const 0))
    (block $odone
      (loop $oloop
        (br_if $odone (i32.ge_u (local.get $d) (local.get $hd)))
        (local.set $o (v128.const i32x4 0 0 0 0))
        (local.set $b (i32.mul (i32.div_u (local.get $p0) (i32.const 48)) (i32.const 48)))
        (block $bdone
          (loop $bloop
            (br_if $bdone (i32.gt_s (local.get $b) (local.get $qt)))
            (local.set $bs (v128.const i32x4 0 0 0 0))
            (local.set $j (local.get $b))
            (if (i32.lt_s (local.get $j) (local.get $p0)) (then (local.set $j (local.get $p0))))
            (local.set $jend (i32.add (local.get $b) (i32.const 47)))
            (if (i32.gt_s (local.get $jend) (local.get $qt)) (then (local.set $jend (local.get $qt))))
            (local.set $vp (i32.add (local.get $v)
              (i32.shl (i32.add (i32.mul (local.get $j) (local.get $hd)) (local.get $d)) (i32.const 2))))
            (block $jdone
              (loop $jloop
                (br_if $jdone (i32.gt_s (local.get $j) (local.get $jend)))
                (local.set $bs (f32x4.add (local.get $bs)
                  (f32x4.mul (v128.load32_splat (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))
                    (v128.load (local.get $vp)))))
                (local.set $vp (i32.add (local.get $vp) (i32.shl (local.get $hd) (i32.const 2))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $jloop)))
            (local.set $o (f32x4.add (local.get $o) (local.get $bs)))
            (local.set $b (i32.add (local.get $b) (i32.const 48)))
            (br $bloop)))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $d) (i32.const 2))) (local.get $o))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $oloop))))
)
