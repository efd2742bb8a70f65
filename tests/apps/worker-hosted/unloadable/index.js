// The test worker runs the 'unloadable' behaviour for this function.
