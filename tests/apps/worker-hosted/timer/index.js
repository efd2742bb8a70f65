// The test worker runs the 'log' behaviour for this timer function.
