"""The five preset pushes: one module each plans and cancels outbox rows, taking ``now``."""
