;; A hand-written core module, embedded and wrapped into a component with jco's wasm-tools:
;; any WASI 0.2 component that exports attex:action/action runs in the sandbox, not only JS.
;; `run` returns ok(input): the canonical ABI passes the input as (ptr, len) in our memory and
;; we answer with a pointer to a result record (tag, ptr, len).
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    ;; bump allocator, aligned to 8
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 1)))))
    (local.get $ptr))
  (func (export "attex:action/action@0.1.0#run") (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (local.get $ptr))
    (i32.store (i32.const 24) (local.get $len))
    (i32.const 16))
)
