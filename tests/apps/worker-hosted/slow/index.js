// The test worker runs the 'slow' behaviour for this function.
