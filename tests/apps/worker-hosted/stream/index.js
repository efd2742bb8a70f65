// The test worker runs the 'stream' behaviour for this function.
