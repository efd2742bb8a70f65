// The test worker runs the 'echo' behaviour for this function.
