// enqueue: writes the request body text to queue `jobs` as one message and answers 202.
const { app, output } = require('@azure/functions');

const queueOut = output.storageQueue({ queueName: 'jobs', connection: 'AzureWebJobsStorage' });

app.http('enqueue', {
    methods: ['POST'],
    authLevel: 'anonymous',
    route: 'enqueue',
    extraOutputs: [queueOut],
    handler: async (request, context) => {
        context.extraOutputs.set(queueOut, await request.text());
        return { status: 202, body: 'queued' };
    },
});
