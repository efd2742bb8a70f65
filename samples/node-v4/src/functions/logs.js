// logs: writes an information and a warning log line through the context, then answers "logged".
const { app } = require('@azure/functions');

app.http('logs', {
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async (request, context) => {
        context.log(`logs: information from ${context.functionName}`);
        context.warn(`logs: a warning from ${context.functionName}`);
        return { body: 'logged' };
    },
});
