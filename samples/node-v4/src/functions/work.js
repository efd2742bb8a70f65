// work: the `jobs` queue worker; throws on poison or non-JSON messages, else reports to `results`.
const { app, output } = require('@azure/functions');

const resultsOut = output.storageQueue({ queueName: 'results', connection: 'AzureWebJobsStorage' });

// The message as an object: the library already parses JSON text, bytes arrive as a Buffer.
function asJob(message) {
    let value = Buffer.isBuffer(message) ? message.toString('utf8') : message;
    if (typeof value === 'string') {
        try {
            value = JSON.parse(value);
        } catch {
            return null;
        }
    }
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : null;
}

app.storageQueue('work', {
    queueName: 'jobs',
    connection: 'AzureWebJobsStorage',
    extraOutputs: [resultsOut],
    handler: async (message, context) => {
        const job = asJob(message);
        // Throwing fails the invocation: the host retries the message, then moves it to
        // `jobs-poison` once it has been dequeued maxDequeueCount times.
        if (job === null) {
            const text = Buffer.isBuffer(message) ? message.toString('utf8') : JSON.stringify(message);
            throw new Error(`work: the message is not a JSON object: ${text}`);
        }
        if (job.poison === true) {
            throw new Error(`work: a poison message (dequeue count ${(context.triggerMetadata || {}).dequeueCount})`);
        }
        const id = job.job === undefined ? null : job.job;
        context.extraOutputs.set(resultsOut, { job: id, done: true, by: 'node-v4' });
        context.log(`finished job ${id}`);
    },
});
